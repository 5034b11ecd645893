import { concatMap, type OperatorFunction } from 'rxjs';
import { preprocessInto, type PreprocessSpec } from '../../preprocess/preprocess-frame.js';
import type { FrameRing } from '../frame-ring.js';
import type { Frame } from '../frame.js';
import type { Preprocessed } from './staged-frame.js';

/**
 * Takes a free ring slot (waiting for one when all are lent to the worker) and fills it with the model input.
 * One frame at a time, so it runs while the worker is busy with the previous slot: double buffering.
 */
export function preprocessFrames(ring: FrameRing, spec: PreprocessSpec): OperatorFunction<Frame, Preprocessed> {
  return concatMap(async (frame) => {
    const waitStartMs = performance.now();
    const slot = await ring.acquire();
    const startMs = performance.now();
    try {
      if (slot.buffer === null) throw new Error(`ring slot ${slot.id} handed out without its buffer`);
      const { transform, bytesCopied } = await preprocessInto(frame.mat, spec, slot.buffer);
      return {
        frame,
        slot,
        transform,
        bytesCopied,
        timings: { read: frame.readMs, queue: startMs - waitStartMs, preprocess: performance.now() - startMs },
      };
    } catch (err) {
      ring.abandon(slot);
      throw err;
    }
  });
}
