import { filter, mergeMap, pipe, type OperatorFunction } from 'rxjs';
import type { InferenceHost } from '../../inference/inference-host.js';
import type { FrameRing } from '../frame-ring.js';
import type { InferenceSchedule } from '../inference-schedule.js';
import type { Inferred, Preprocessed } from './staged-frame.js';

/** The part of the inference host this operator needs (tests pass a fake). Runs complete in the order sent. */
export type Inferencer = Pick<InferenceHost, 'run'>;

/**
 * Called with a frame whose inference failed. Throwing fails the run; returning skips that frame (the caller
 * counts it and releases what the frame holds).
 */
export type OnInferenceFailed = (staged: Omit<Preprocessed, 'slot'>, err: unknown) => void;

/**
 * Lends each filled slot's buffer to the worker (transfer, zero copies) and gets it back with the output.
 * Up to `ring.slotCount` frames are in the worker's queue at once, so the worker never waits for preprocessing.
 * A failed run never costs the ring its slot: a buffer the worker could not give back is replaced.
 */
export function inferFrames(
  inferencer: Inferencer,
  ring: FrameRing,
  dims: number[],
  dtype: 'float32' | 'uint8',
  onFailed: OnInferenceFailed = (_staged, err) => {
    throw err;
  },
  schedule?: InferenceSchedule,
): OperatorFunction<Preprocessed, Inferred> {
  return pipe(
    mergeMap(async ({ slot, ...staged }): Promise<Inferred | null> => {
      const sentAtMs = performance.now();
      // The slot may be given back, and handed to another frame, before this run settles: only this use is reclaimed.
      const generation = slot.generation;
      schedule?.sent();
      try {
        const result = await inferencer.run(slot.id, ring.lend(slot), dims, dtype, (id, buffer) => ring.giveBack(id, buffer));
        schedule?.done(result.inferMs, result.batchSize);
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
      } catch (err) {
        schedule?.failed();
        ring.reclaim(slot, generation);
        onFailed(staged, err);
        return null;
      }
    }, ring.slotCount),
    filter((x): x is Inferred => x !== null),
  );
}
