import { describe, expect, it } from 'vitest';
import { cv } from '../../../src/cv.js';
import { inputByteLength, interpolationFlag, preprocessInto, type PreprocessSpec } from '../../../src/preprocess/preprocess-frame.js';

const base: PreprocessSpec = {
  inputWh: [4, 2],
  layout: 'nhwc',
  dtype: 'float32',
  resize: 'stretch',
  interpolation: 'auto',
  pixelFormat: 'rgb',
  scale: 1,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  padValue: 0,
};

// A uniform BGR frame: blue 10, green 20, red 30.
const frame = () => new cv.Mat(6, 8, cv.CV_8UC3, [10, 20, 30]);

async function run(spec: PreprocessSpec) {
  const buffer = new ArrayBuffer(inputByteLength(spec));
  const result = await preprocessInto(frame(), spec, buffer);
  return { values: Array.from(spec.dtype === 'float32' ? new Float32Array(buffer) : new Uint8Array(buffer)), result };
}

describe('preprocessInto', () => {
  it('NHWC float RGB: channels swapped from BGR, raw 0..255', async () => {
    const { values, result } = await run(base);
    expect(values.slice(0, 6)).toEqual([30, 20, 10, 30, 20, 10]);
    expect(values).toHaveLength(4 * 2 * 3);
    // One copy, straight from OpenCV into the slot.
    expect(result.bytesCopied).toBe(4 * 2 * 3 * 4);
  });

  it('NCHW float with scale and per-channel mean/std: one plane per channel', async () => {
    const { values } = await run({ ...base, layout: 'nchw', scale: 1 / 255, mean: [0.1, 0.2, 0.3], std: [0.5, 0.25, 0.1] });
    const plane = 4 * 2;
    expect(values[0]).toBeCloseTo((30 / 255 - 0.1) / 0.5, 5);
    expect(values[plane]).toBeCloseTo((20 / 255 - 0.2) / 0.25, 5);
    expect(values[2 * plane]).toBeCloseTo((10 / 255 - 0.3) / 0.1, 5);
  });

  it('NHWC float with per-channel mean keeps interleaving', async () => {
    const { values } = await run({ ...base, mean: [1, 2, 3] });
    expect(values.slice(0, 3)).toEqual([29, 18, 7]);
  });

  it('uint8 BGR passes pixels through', async () => {
    const { values } = await run({ ...base, dtype: 'uint8', pixelFormat: 'bgr' });
    expect(values.slice(0, 3)).toEqual([10, 20, 30]);
  });

  it('letterbox pads with padValue around the resized frame', async () => {
    const spec: PreprocessSpec = { ...base, inputWh: [8, 8], resize: 'letterbox', padValue: 114, dtype: 'uint8' };
    const { values, result } = await run(spec);
    // 8x6 frame in an 8x8 input: one padded row at the top and one at the bottom.
    expect(result.transform.offsetY).toBe(1);
    expect(values.slice(0, 3)).toEqual([114, 114, 114]);
    expect(values.slice(8 * 3, 8 * 3 + 3)).toEqual([30, 20, 10]);
  });

  it('shrinks by area averaging when the frame is 2x or more the input (auto), so a lone bright pixel is averaged, not point-sampled', async () => {
    const spec: PreprocessSpec = { ...base, inputWh: [8, 8], pixelFormat: 'bgr' };
    const spot = () => {
      const m = new cv.Mat(64, 64, cv.CV_8UC3, [0, 0, 0]);
      m.set(3, 3, [255, 255, 255]);
      return m;
    };
    const first = async (s: PreprocessSpec) => {
      const buffer = new ArrayBuffer(inputByteLength(s));
      await preprocessInto(spot(), s, buffer);
      return new Float32Array(buffer)[0];
    };
    expect(await first(spec)).toBeCloseTo(255 / 64, 0);
    expect(await first({ ...spec, interpolation: 'area' })).toBeCloseTo(255 / 64, 0);
    // Bilinear reads only the 2×2 pixels around the sample point (3.5, 3.5): a quarter of the spot.
    expect(await first({ ...spec, interpolation: 'linear' })).toBeCloseTo(255 / 4, 0);
    expect(interpolationFlag('auto', [768, 576], [32, 32])).toBe(cv.INTER_AREA);
    expect(interpolationFlag('auto', [768, 576], [512, 512])).toBe(cv.INTER_LINEAR);
  });
});
