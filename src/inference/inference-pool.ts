import type { EngineInfo } from './engine.js';
import type { InferenceHost } from './inference-host.js';
import type { WorkerRunResult } from './worker-host.js';

/** What the pool needs of each member (InferenceWorkerHost; tests pass fakes). */
export type PoolMember = InferenceHost & { readonly inFlight: number; readonly failed?: boolean };

/**
 * Several inference workers as one host: each run goes to the member with the fewest runs in flight, and the runs
 * settle in the order they were sent, whichever member finished first — the pipeline downstream relies on that order
 * (frames of a source stay in sequence). Buffers are given back as soon as their member is done with them, so a slot
 * is never held for ordering's sake. On 2 cores, 2 workers with 1 onnxruntime thread each keep both cores busy where
 * one 2-thread session leaves gaps between its parallel sections (README, "onnxruntime's threads").
 */
export class InferencePool implements InferenceHost {
  readonly info: EngineInfo;
  /** Settles after the last run sent has settled: the next run's result waits for it. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly members: readonly PoolMember[]) {
    if (members.length === 0) throw new RangeError('an inference pool needs at least one member');
    this.info = members[0]!.info;
  }

  get size(): number {
    return this.members.length;
  }

  run(slotId: number, buffer: ArrayBuffer, dims: number[], dtype: 'float32' | 'uint8', giveBack: (slotId: number, buffer: ArrayBuffer) => void): Promise<WorkerRunResult> {
    // A crashed member has nothing in flight and fails every run at once: the others take the work while any lives.
    const alive = this.members.filter((m) => m.failed !== true);
    const member = (alive.length > 0 ? alive : this.members).reduce((best, m) => (m.inFlight < best.inFlight ? m : best));
    const result = member.run(slotId, buffer, dims, dtype, giveBack);
    // A run may fail before the runs ahead of it settle: its rejection is handled here and surfaces in order below.
    result.catch(() => undefined);
    const ordered = this.tail.then(
      () => result,
      () => result,
    );
    this.tail = ordered.catch(() => undefined);
    return ordered;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.members.map((m) => m.close()));
  }
}
