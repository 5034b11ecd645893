import { concatMap, type OperatorFunction } from 'rxjs';
import type { Sink } from '../../sinks/sink.js';
import type { AnnotatedFrame } from '../frame.js';

/** Hands each frame to every sink in turn, waiting while a sink applies backpressure. Emits the write time. */
export function writeFrames(sinks: readonly Sink[]): OperatorFunction<AnnotatedFrame, AnnotatedFrame & { writeMs: number }> {
  return concatMap(async (annotated) => {
    const startMs = performance.now();
    for (const sink of sinks) await sink.write(annotated);
    return { ...annotated, writeMs: performance.now() - startMs };
  });
}
