import { cv } from '../../../src/cv.js';
import { inputByteLength, preprocessInto, type PreprocessSpec } from '../../../src/preprocess/preprocess-frame.js';
import { openVideoFile } from '../../../src/sources/file-source.js';

/** Frames `indices` of a clip, preprocessed for a model (test helper: real decoding, real preprocessing). */
export async function clipFrames(clip: string, spec: PreprocessSpec, indices: number[]): Promise<Float32Array[]> {
  const { capture, first } = await openVideoFile(clip);
  first.release();
  const out: Float32Array[] = [];
  try {
    for (const i of indices) {
      capture.set(cv.CAP_PROP_POS_FRAMES, i);
      const frame = await capture.readAsync();
      const buffer = new ArrayBuffer(inputByteLength(spec));
      await preprocessInto(frame, spec, buffer);
      frame.release();
      out.push(new Float32Array(buffer));
    }
  } finally {
    capture.release();
  }
  return out;
}
