import { map, type OperatorFunction } from 'rxjs';
import type { Annotator } from '../../annotate/annotator.js';
import type { AnnotatedFrame } from '../frame.js';
import type { Decoded } from './staged-frame.js';

/** Builds the Prediction, and draws it on the frame when an annotator is given. */
export function annotateFrames(annotator: Annotator | null, fpsMeter: { tick(nowMs: number): number }): OperatorFunction<Decoded, AnnotatedFrame> {
  return map(({ frame, result, timings }) => {
    const startMs = performance.now();
    const fps = fpsMeter.tick(startMs);
    const latencyMs = startMs - frame.readAtMs;
    annotator?.annotate(frame.mat, result, { fps, latencyMs, inferMs: timings.infer });
    const annotate = performance.now() - startMs;
    return {
      frame,
      prediction: {
        sourceId: frame.sourceId,
        frameIndex: frame.index,
        timestampMs: frame.timestampMs,
        sizeWh: frame.sizeWh,
        result,
        latencyMs: latencyMs + annotate,
        timingsMs: { ...timings, annotate },
      },
    };
  });
}
