import { describe, expect, it } from 'vitest';
import { InferencePool, type PoolMember } from '../../../src/inference/inference-pool.js';
import type { WorkerRunResult } from '../../../src/inference/worker-host.js';

/** A member whose runs finish when the test says so (no timing involved). */
function member(name: string) {
  const pending: Array<{ slotId: number; buffer: ArrayBuffer; giveBack: (id: number, b: ArrayBuffer) => void; resolve: (r: WorkerRunResult) => void; reject: (e: Error) => void }> = [];
  let closed = false;
  const m: PoolMember & { finish(i: number, fail?: boolean): void; readonly closed: boolean; readonly name: string } = {
    name,
    info: { backend: 'fake', inputName: 'x', outputName: 'y', inputShape: [1] },
    get inFlight() {
      return pending.filter(Boolean).length;
    },
    get closed() {
      return closed;
    },
    run(slotId, buffer, _dims, _dtype, giveBack) {
      return new Promise<WorkerRunResult>((resolve, reject) => pending.push({ slotId, buffer, giveBack, resolve, reject }));
    },
    finish(i, fail = false) {
      const p = pending[i]!;
      delete pending[i];
      p.giveBack(p.slotId, p.buffer);
      if (fail) p.reject(new Error(`${name} failed slot ${p.slotId}`));
      else p.resolve({ slotId: p.slotId, buffer: p.buffer, output: Float32Array.of(p.slotId), outputDims: [1], inferMs: 1 });
    },
    async close() {
      closed = true;
    },
  };
  return m;
}

describe('InferencePool (several inference workers as one host)', () => {
  it('spreads runs over the least busy member, gives buffers back at once, and settles runs in the order sent', async () => {
    const a = member('a');
    const b = member('b');
    const pool = new InferencePool([a, b]);
    const givenBack: number[] = [];
    const settled: string[] = [];
    const runs = [0, 1, 2, 3].map((slot) =>
      pool.run(slot, new ArrayBuffer(4), [1], 'float32', (id) => givenBack.push(id)).then(
        (r) => settled.push(`ok ${r.slotId}`),
        (e: Error) => settled.push(e.message),
      ),
    );
    expect([a.inFlight, b.inFlight]).toEqual([2, 2]); // a, b, a, b
    b.finish(0); // slot 1 is done first…
    b.finish(1, true); // …then slot 3 fails
    await new Promise((r) => setImmediate(r));
    expect(givenBack).toEqual([1, 3]); // buffers come back as soon as each member is done
    expect(settled).toEqual([]); // but nothing settles before slot 0
    a.finish(0);
    await new Promise((r) => setImmediate(r));
    expect(settled).toEqual(['ok 0', 'ok 1']);
    a.finish(1);
    await Promise.all(runs);
    expect(settled).toEqual(['ok 0', 'ok 1', 'ok 2', 'b failed slot 3']);
  });

  it('a failed run does not hold up or fail the runs after it', async () => {
    const a = member('a');
    const pool = new InferencePool([a]);
    const first = pool.run(0, new ArrayBuffer(4), [1], 'float32', () => {});
    const second = pool.run(1, new ArrayBuffer(4), [1], 'float32', () => {});
    a.finish(0, true);
    a.finish(1);
    await expect(first).rejects.toThrow('a failed slot 0');
    await expect(second).resolves.toMatchObject({ slotId: 1 });
  });

  it('closes every member', async () => {
    const members = [member('a'), member('b'), member('c')];
    await new InferencePool(members).close();
    expect(members.map((m) => m.closed)).toEqual([true, true, true]);
  });

  it('a crashed member gets no more runs while another lives', async () => {
    const a = Object.assign(member('a'), { failed: true });
    const b = member('b');
    const pool = new InferencePool([a, b]);
    for (const slot of [0, 1, 2]) void pool.run(slot, new ArrayBuffer(4), [1], 'float32', () => {});
    expect([a.inFlight, b.inFlight]).toEqual([0, 3]);
    for (const i of [0, 1, 2]) b.finish(i);
  });
});

