import { concatMap, type OperatorFunction } from 'rxjs';
import { VisionpipeError, isVisionpipeError, messageOf } from '../../errors.js';
import type { Sink } from '../../sinks/sink.js';
import type { AnnotatedFrame } from '../frame.js';

/**
 * Hands each frame to every sink in turn, waiting while a sink applies backpressure. Emits the write time.
 * A sink's error without a code (a disk error) becomes VP_SINK_FAILED naming the sink.
 */
export function writeFrames<T extends AnnotatedFrame>(sinks: readonly Sink[]): OperatorFunction<T, T & { writeMs: number }> {
  return concatMap(async (annotated) => {
    const startMs = performance.now();
    for (const sink of sinks) {
      try {
        await sink.write(annotated);
      } catch (err) {
        if (isVisionpipeError(err)) throw err;
        throw new VisionpipeError('VP_SINK_FAILED', `Writing to the ${sink.name} output failed: ${messageOf(err)}`, { cause: err });
      }
    }
    return { ...annotated, writeMs: performance.now() - startMs };
  });
}
