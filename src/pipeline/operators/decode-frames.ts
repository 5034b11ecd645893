import { map, type OperatorFunction } from 'rxjs';
import type { OutputDecoder } from '../../postprocess/decode-output.js';
import type { Decoded, Inferred } from './staged-frame.js';

/** Raw output tensor → classifications or detections in frame pixels. */
export function decodeFrames(decoder: OutputDecoder): OperatorFunction<Inferred, Decoded> {
  return map(({ output, ...staged }) => {
    const startMs = performance.now();
    const result = decoder(output, staged.transform, staged.frame.sizeWh);
    return { ...staged, result, timings: { ...staged.timings, postprocess: performance.now() - startMs } };
  });
}
