import { cv } from '../../src/cv.js';
import { inputByteLength, preprocessInto, type PreprocessSpec } from '../../src/preprocess/preprocess-frame.js';

/** Every `every`-th frame of a clip (from the first), preprocessed as `spec` says, as float model inputs. */
export async function preprocessedFrames(clip: string, spec: PreprocessSpec, every: number): Promise<Float32Array[]> {
  const cap = new cv.VideoCapture(clip);
  const frames: Float32Array[] = [];
  try {
    for (let i = 0; ; i++) {
      const frame = await cap.readAsync();
      if (frame.empty) break;
      if (i % every === 0) {
        const buffer = new ArrayBuffer(inputByteLength(spec));
        await preprocessInto(frame, spec, buffer);
        frames.push(new Float32Array(buffer));
      }
      frame.release();
    }
  } finally {
    cap.release();
  }
  return frames;
}
