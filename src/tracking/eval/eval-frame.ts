import type { Xyxy } from '../types.js';

/** One labelled box: a ground-truth object or a tracker hypothesis, with its trajectory id. */
export interface EvalBox {
  /** Trajectory id; unique within a frame (the same id in two frames is the same object / track). */
  id: number;
  /** Frame pixels. */
  xyxy: Xyxy;
}

/** One frame of an evaluation: the truth and what the tracker output (frames are consecutive, in time order). */
export interface EvalFrame {
  gt: readonly EvalBox[];
  hyp: readonly EvalBox[];
}

/** Options shared by the metrics. */
export interface MatchOptions {
  /** A ground-truth box and a hypothesis correspond only at or above this IoU. Default 0.5 (MOTChallenge). */
  iouThreshold: number;
}

export const DEFAULT_IOU_THRESHOLD = 0.5;

/**
 * IoU is computed in floating point, so a pair built to sit exactly on the threshold (IoU 0.5) could land a hair
 * below it; TrackEval allows the same epsilon.
 */
export const IOU_EPSILON = 1e-9;

/** Throws when a frame repeats an id: every metric here assumes one box per trajectory per frame. */
export function assertUniqueIds(boxes: readonly EvalBox[], side: 'gt' | 'hyp', frameIndex: number): void {
  const seen = new Set<number>();
  for (const box of boxes) {
    if (seen.has(box.id)) throw new RangeError(`frame ${frameIndex}: ${side} id ${box.id} appears twice; expected one box per id per frame`);
    seen.add(box.id);
  }
}
