import { map, type OperatorFunction } from 'rxjs';
import type { Annotator } from '../../annotate/annotator.js';
import type { TrackedFrame } from '../../tracking/source-tracking.js';
import type { AnnotatedFrame } from '../frame.js';
import type { Tracked } from './staged-frame.js';

/** An annotated frame and, for tracked sources, what tracking decided on it (its object events go out next). */
export interface AnnotatedTrackedFrame extends AnnotatedFrame {
  tracked: TrackedFrame | null;
}

/** Builds the Prediction, and draws it on the frame when an annotator is given. */
export function annotateFrames(annotator: Annotator | null, fpsMeter: { tick(nowMs: number): number }): OperatorFunction<Tracked, AnnotatedTrackedFrame> {
  return map(({ frame, result, timings, tracked }) => {
    const startMs = performance.now();
    const fps = fpsMeter.tick(startMs);
    const latencyMs = startMs - frame.readAtMs;
    annotator?.annotate(frame.mat, result, { fps, latencyMs, inferMs: timings.infer }, tracked);
    const annotate = performance.now() - startMs;
    return {
      frame,
      tracked,
      prediction: {
        sourceId: frame.sourceId,
        frameIndex: frame.index,
        timestampMs: frame.timestampMs,
        sizeWh: frame.sizeWh,
        result,
        ...(tracked === null ? {} : { tracks: tracked.tracks }),
        latencyMs: latencyMs + annotate,
        timingsMs: { ...timings, annotate },
      },
    };
  });
}
