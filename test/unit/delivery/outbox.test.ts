import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { Outbox, outboxHolder, type OutboxOptions } from '../../../src/delivery/outbox.js';

const root = mkdtempSync(join(tmpdir(), 'visionpipe-outbox-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function open(extra: Partial<OutboxOptions> = {}, dir = join(root, `o${++n}`)) {
  return { dir, outbox: new Outbox<{ i: number }>({ dir, fsync: 'always', maxBytes: null, maxAgeMs: null, ...extra }) };
}

describe('Outbox: a durable log that each target reads from its own position', () => {
  it('targets read and acknowledge independently, in order', () => {
    const { outbox } = open();
    for (let i = 1; i <= 5; i++) expect(outbox.append({ i })).toBe(i);
    expect(outbox.read('mqtt', 3).map((r) => r.event.i)).toEqual([1, 2, 3]);
    outbox.ack('mqtt', 3);
    expect(outbox.read('mqtt', 10).map((r) => r.seq)).toEqual([4, 5]);
    expect(outbox.read('webhook', 10).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(outbox.depth('mqtt')).toBe(2);
    expect(outbox.depth('webhook')).toBe(5);
    outbox.ack('mqtt', 2); // never backwards
    expect(outbox.position('mqtt')).toBe(3);
    expect(() => outbox.ack('../evil', 1)).toThrow(RangeError);
    outbox.close();
  });

  it('killed without closing (kill -9): the next open resumes each target where it acknowledged, and appends go on', () => {
    const { dir, outbox } = open({ fsync: 'never' });
    for (let i = 1; i <= 4; i++) outbox.append({ i });
    outbox.ack('mqtt', 1);
    // No close(): the process is gone. A new process opens the same folder.
    const { outbox: again } = open({ fsync: 'never' }, dir);
    expect(again.read('mqtt', 10).map((r) => r.seq)).toEqual([2, 3, 4]);
    expect(again.append({ i: 5 })).toBe(5);
    expect(again.read('mqtt', 10).map((r) => r.seq)).toEqual([2, 3, 4, 5]);
    again.close();
  });

  it('a record torn by a crash mid-append is cut; the log stays readable and appendable', () => {
    const { dir, outbox } = open();
    outbox.append({ i: 1 });
    outbox.append({ i: 2 });
    outbox.close();
    const [segment] = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
    const torn = '{"seq":3,"atMs":1,"ev';
    appendFileSync(join(dir, segment ?? ''), torn);
    const { outbox: again } = open({}, dir);
    expect(again.recoveredTornBytes).toBe(torn.length);
    expect(again.append({ i: 3 })).toBe(3);
    expect(again.read('t', 10).map((r) => r.event.i)).toEqual([1, 2, 3]);
    again.close();
  });

  it('records lost to a power cut behind a surviving cursor: numbering goes on above the cursor, nothing new is skipped', () => {
    const { dir, outbox } = open({ fsync: 'never' });
    for (let i = 1; i <= 10; i++) outbox.append({ i });
    outbox.ack('mqtt', 10);
    outbox.close();
    // The page cache lost the last three records; the cursor file (renamed earlier) survived.
    const [segment] = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
    const path = join(dir, segment ?? '');
    writeFileSync(path, readFileSync(path, 'utf8').split('\n').slice(0, 7).join('\n') + '\n');
    const { outbox: again } = open({ fsync: 'never' }, dir);
    expect(again.append({ i: 11 })).toBe(11);
    expect(again.read('mqtt', 10).map((r) => r.event.i)).toEqual([11]);
    again.close();
  });

  it('a target new to the outbox starts with the events appended from then on, not the retained history', () => {
    const { outbox } = open();
    for (let i = 1; i <= 5; i++) outbox.append({ i });
    outbox.addTarget('new-hook');
    outbox.addTarget('new-hook'); // idempotent
    outbox.append({ i: 6 });
    expect(outbox.read('new-hook', 10).map((r) => r.event.i)).toEqual([6]);
    outbox.close();
  });

  it('reads go on from the last acknowledged record, across segments, whatever was acknowledged how', () => {
    const { outbox } = open({ segmentBytes: 300 });
    for (let i = 1; i <= 40; i++) outbox.append({ i });
    const seen: number[] = [];
    for (let batch = outbox.read('t', 3); batch.length > 0; batch = outbox.read('t', 3)) {
      seen.push(...batch.map((r) => r.event.i));
      outbox.ack('t', batch.at(-1)?.seq ?? 0);
    }
    expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // An ack without a read (another path) still leaves reads correct.
    outbox.append({ i: 41 });
    outbox.append({ i: 42 });
    outbox.ack('t', 41);
    expect(outbox.read('t', 10).map((r) => r.event.i)).toEqual([42]);
    outbox.close();
  });

  it('one process per folder: a live holder is refused, a lock left by a dead one is taken over', async () => {
    const dir = join(root, 'locked');
    const other = spawn('sleep', ['30']);
    await once(other, 'spawn');
    try {
      const { outbox } = open({}, dir);
      outbox.close(); // releases its own lock
      writeFileSync(join(dir, 'lock'), String(other.pid));
      expect(outboxHolder(dir)).toBe(other.pid);
      expect(() => open({}, dir)).toThrow(`in use by process ${other.pid}`);
    } finally {
      other.kill('SIGKILL');
      await once(other, 'exit');
    }
    expect(outboxHolder(dir)).toBeNull();
    const { outbox: taken } = open({}, dir);
    expect(readFileSync(join(dir, 'lock'), 'utf8')).toBe(String(process.pid));
    taken.close();
  });

  it('segments roll at segmentBytes; the byte bound deletes the oldest, counting what each target lost', () => {
    const { dir, outbox } = open({ segmentBytes: 200, maxBytes: 450 });
    for (let i = 1; i <= 20; i++) outbox.append({ i }); // ~45 bytes a record: 4 per segment
    expect(readdirSync(dir).filter((f) => f.endsWith('.jsonl')).length).toBe(5);
    outbox.ack('fast', 20);
    outbox.ack('slow', 2);
    const drop = outbox.enforceRetention(['never-seen', 'slow', 'fast']);
    expect(outbox.bytes).toBeLessThanOrEqual(450);
    const first = outbox.read('slow', 1)[0]?.seq ?? 0;
    expect(drop.records).toBe(first - 1);
    expect(drop.byTarget).toEqual({ slow: first - 1 - 2, 'never-seen': first - 1 });
    expect(drop.byTarget['fast']).toBeUndefined();
    expect(drop.unacknowledged).toBe(first - 1);
    // The newest records are kept, in order.
    expect(outbox.read('slow', 100).map((r) => r.seq).at(-1)).toBe(20);
    expect(outbox.depth('never-seen')).toBe(20 - first + 1);
    outbox.close();
  });

  it('the age bound deletes segments whose newest record is older than maxAgeMs, never the one being written', () => {
    let now = 1_000_000;
    const { outbox } = open({ segmentBytes: 100, maxAgeMs: 60_000, nowMs: () => now });
    for (let i = 1; i <= 6; i++) outbox.append({ i });
    now += 120_000;
    outbox.append({ i: 7 });
    const drop = outbox.enforceRetention();
    expect(drop.records).toBe(6);
    expect(outbox.read('t', 10).map((r) => r.seq)).toEqual([7]);
    expect(outbox.oldestUnacknowledgedAgeMs('t')).toBe(0);
    now += 5000;
    expect(outbox.oldestUnacknowledgedAgeMs('t')).toBe(5000);
    outbox.close();
  });
});
