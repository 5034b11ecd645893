import { lastValueFrom, map, tap, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { FrameRing } from '../../../src/pipeline/frame-ring.js';
import { inferFrames } from '../../../src/pipeline/operators/infer-frames.js';
import { preprocessFrames } from '../../../src/pipeline/operators/preprocess-frames.js';
import { readFrames } from '../../../src/pipeline/operators/read-frames.js';
import { Permits } from '../../../src/pipeline/permits.js';
import type { PreprocessSpec } from '../../../src/preprocess/preprocess-frame.js';
import { CountingSource, SlowInferencer } from '../../helpers/fakes.js';

const spec: PreprocessSpec = {
  inputWh: [4, 4],
  layout: 'nhwc',
  dtype: 'uint8',
  interpolation: 'auto',
  resize: 'stretch',
  pixelFormat: 'bgr',
  scale: 1,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  padValue: 0,
};

async function runFlow(frames: number, ringSize: number, maxInFlight: number, hold: () => Promise<void>) {
  const source = new CountingSource(frames);
  const ring = new FrameRing(ringSize, 4 * 4 * 3);
  const permits = new Permits(maxInFlight);
  const worker = new SlowInferencer(hold);
  let completed = 0;
  let maxReadAhead = 0;
  const seen = await lastValueFrom(
    readFrames(source, permits, null, { stopRequested: false }).pipe(
      tap(() => (maxReadAhead = Math.max(maxReadAhead, source.reads - completed))),
      preprocessFrames(ring, spec),
      inferFrames(worker, ring, [1, 4, 4, 3], 'uint8'),
      map((inferred) => ({ index: inferred.frame.index, value: inferred.output[0] })),
      tap(() => {
        completed++;
        permits.release();
      }),
      toArray(),
    ),
  );
  return { seen, source, worker, ring, maxReadAhead };
}

const sleep = (ms: number) => () => new Promise<void>((r) => setTimeout(r, ms));

/** Waits (without a deadline of its own: the test timeout bounds it) until `condition` holds. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 2));
}

describe('ring hand-off between preprocessing and a slow worker', () => {
  it.each([
    { frames: 300, ringSize: 2, maxInFlight: 4 },
    { frames: 120, ringSize: 3, maxInFlight: 3 },
    { frames: 50, ringSize: 1, maxInFlight: 1 },
  ])('delivers every frame once, in order, with its own pixels ($frames frames, ring $ringSize)', async (c) => {
    const { seen, worker } = await runFlow(c.frames, c.ringSize, c.maxInFlight, sleep(1));
    expect(seen.map((s) => s.index)).toEqual(Array.from({ length: c.frames }, (_, i) => i));
    // The worker saw frame i's pixels for frame i: no slot was overwritten or mixed up.
    expect(seen.every((s) => s.value === s.index % 256)).toBe(true);
    expect(worker.violations).toEqual([]);
    expect(worker.runs).toBe(c.frames);
  });

  it('makes a file source wait instead of reading ahead or dropping when inference is slow', async () => {
    const { seen, source, ring, maxReadAhead } = await runFlow(40, 2, 4, sleep(3));
    expect(source.reads).toBe(40);
    expect(seen).toHaveLength(40);
    // Never more frames read than the in-flight bound allows, however slow the worker.
    expect(maxReadAhead).toBeLessThanOrEqual(4);
    expect(ring.inUse).toBe(0);
  });

  it('stops reading while the worker holds every slot, and resumes without loss when it lets go', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const source = new CountingSource(20);
    const ring = new FrameRing(2, 4 * 4 * 3);
    const worker = new SlowInferencer(() => gate);
    const run = (async () => {
      const permits = new Permits(4);
      const out = await lastValueFrom(
        readFrames(source, permits, null, { stopRequested: false }).pipe(
          preprocessFrames(ring, spec),
          inferFrames(worker, ring, [1, 4, 4, 3], 'uint8'),
          tap(() => permits.release()),
          map((i) => i.frame.index),
          toArray(),
        ),
      );
      return out;
    })();
    // The worker answers nothing: both slots end up lent to it, and reading stops at the in-flight bound of 4.
    await until(() => worker.inUse.size === 2);
    expect(source.reads).toBe(4);
    expect(ring.inUse).toBe(2);
    await new Promise((r) => setTimeout(r, 50));
    expect(source.reads).toBe(4);
    open();
    const out = await run;
    expect(out).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(ring.waits).toBeGreaterThan(0);
  });
});
