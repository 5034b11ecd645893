import { mergeMap, type OperatorFunction } from 'rxjs';
import type { InferenceWorkerHost } from '../../inference/worker-host.js';
import type { FrameRing } from '../frame-ring.js';
import type { Inferred, Preprocessed } from './staged-frame.js';

/** The part of the worker host this operator needs (tests pass a fake). Runs complete in the order sent. */
export type Inferencer = Pick<InferenceWorkerHost, 'run'>;

/**
 * Lends each filled slot's buffer to the worker (transfer, zero copies) and gets it back with the output.
 * Up to `ring.slotCount` frames are in the worker's queue at once, so the worker never waits for preprocessing.
 */
export function inferFrames(
  inferencer: Inferencer,
  ring: FrameRing,
  dims: number[],
  dtype: 'float32' | 'uint8',
): OperatorFunction<Preprocessed, Inferred> {
  return mergeMap(async ({ slot, ...staged }) => {
    const sentAtMs = performance.now();
    const result = await inferencer.run(slot.id, ring.lend(slot), dims, dtype, (id, buffer) => ring.giveBack(id, buffer));
    const roundTripMs = performance.now() - sentAtMs;
    return {
      ...staged,
      output: result.output,
      timings: {
        ...staged.timings,
        queue: staged.timings.queue + Math.max(0, roundTripMs - result.inferMs),
        infer: result.inferMs,
      },
    };
  }, ring.slotCount);
}
