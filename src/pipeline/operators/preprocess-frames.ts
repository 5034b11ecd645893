import { concatMap, filter, pipe, type OperatorFunction } from 'rxjs';
import type { DropReason } from '../../sources/source-state.js';
import { preprocessInto, type PreprocessSpec } from '../../preprocess/preprocess-frame.js';
import type { FrameRing } from '../frame-ring.js';
import type { Frame } from '../frame.js';
import type { InferenceSchedule } from '../inference-schedule.js';
import type { Preprocessed } from './staged-frame.js';

export interface StalenessPolicy {
  /** Frames older than this (read → now) when a slot is free are dropped; null = never (files). */
  maxStalenessMs(frame: Frame): number | null;
  onDrop(frame: Frame, reason: DropReason): void;
}

/**
 * Takes a free ring slot (waiting for one when all are lent to the worker) and fills it with the model input.
 * One frame at a time, so it runs while the worker is busy with the previous slot: double buffering.
 * A live frame that went stale while waiting for its slot is dropped here, before any work is spent on it.
 */
export function preprocessFrames(ring: FrameRing, spec: PreprocessSpec, staleness?: StalenessPolicy, schedule?: InferenceSchedule): OperatorFunction<Frame, Preprocessed> {
  return pipe(concatMap((frame) => fill(ring, spec, frame, staleness, schedule)), filter((p): p is Preprocessed => p !== null));
}

async function fill(ring: FrameRing, spec: PreprocessSpec, frame: Frame, staleness?: StalenessPolicy, schedule?: InferenceSchedule): Promise<Preprocessed | null> {
  const waitStartMs = performance.now();
    const slot = await ring.acquire();
    const startMs = performance.now();
    const budgetMs = staleness?.maxStalenessMs(frame) ?? null;
    if (budgetMs !== null && startMs - frame.readAtMs > budgetMs) {
      ring.abandon(slot);
      staleness?.onDrop(frame, 'stale');
      return null;
    }
    try {
      if (slot.buffer === null) throw new Error(`ring slot ${slot.id} handed out without its buffer`);
      const { transform, bytesCopied } = await preprocessInto(frame.mat, spec, slot.buffer);
      schedule?.prepared(frame.sourceId);
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
}
