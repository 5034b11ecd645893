import { cv } from '../../src/cv.js';
import type { WorkerRunResult } from '../../src/inference/worker-host.js';
import type { Frame } from '../../src/pipeline/frame.js';
import type { Inferencer } from '../../src/pipeline/operators/infer-frames.js';
import { noDrops, type FrameSource, type SourceInfo } from '../../src/sources/frame-source.js';

/** A file-like source of `count` tiny frames; frame i is filled with the value i % 256. Counts its reads. */
export class CountingSource implements FrameSource {
  readonly info: SourceInfo = { kind: 'file', id: 'fake', sizeWh: [8, 8], fps: 10, frameCount: null };
  readonly drops = noDrops();
  reads = 0;
  closed = false;

  constructor(private readonly count: number) {}

  async read(): Promise<Frame | null> {
    if (this.reads >= this.count) return null;
    const index = this.reads++;
    const mat = new cv.Mat(8, 8, cv.CV_8UC3, [index % 256, index % 256, index % 256]);
    const now = performance.now();
    return { sourceId: 'fake', index, timestampMs: index * 100, sizeWh: [8, 8], mat, readAtMs: now, readMs: 0 };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/**
 * A slow inference worker stand-in with the real transfer semantics: each input buffer is moved (detached from
 * the caller) with structuredClone, held until `hold()` resolves, checked to be unchanged, then moved back. Runs are
 * served one at a time in arrival order, like the real worker. It records violations instead of throwing so a
 * test can assert on them.
 */
export class SlowInferencer implements Inferencer {
  readonly inUse = new Set<number>();
  readonly violations: string[] = [];
  runs = 0;
  private queue: Promise<unknown> = Promise.resolve();

  /** `hold` decides how long each run keeps its buffer (a timer, or a gate the test opens). */
  constructor(private readonly hold: () => Promise<void>) {}

  run(
    slotId: number,
    buffer: ArrayBuffer,
    dims: number[],
    _dtype: 'float32' | 'uint8',
    giveBack: (slotId: number, buffer: ArrayBuffer) => void,
  ): Promise<WorkerRunResult> {
    if (this.inUse.has(slotId)) this.violations.push(`slot ${slotId} sent again while still in use`);
    this.inUse.add(slotId);
    const moved = structuredClone(buffer, { transfer: [buffer] });
    const length = dims.reduce((a, b) => a * b, 1);
    const job = this.queue.then(async () => {
      const view = new Uint8Array(moved, 0, length);
      const before = Array.from(view);
      await this.hold();
      if (view.some((v, i) => v !== before[i])) this.violations.push(`slot ${slotId} changed during inference`);
      this.runs++;
      this.inUse.delete(slotId);
      giveBack(slotId, moved);
      return { slotId, buffer: moved, output: Float32Array.of(view[0] ?? -1), outputDims: [1, 1], inferMs: 0 };
    });
    this.queue = job;
    return job;
  }
}
