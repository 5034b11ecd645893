import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../src/models/keras/synthetic-resnet.js';
import { calibratedRange, quantizationMse, type TensorRange } from '../../../src/models/optimize/calibrate.js';

/** A range record as collectRanges writes it, from raw values. */
function rangeOf(values: Float32Array): TensorRange {
  return { min: Math.min(...values), max: Math.max(...values), signed: values, sample: values.map(Math.abs).sort() };
}

describe('MSE range search', () => {
  it('on a heavy-tailed (Laplace) tensor, clips the rare tail and rounds with less error than min-max and the percentile rule', () => {
    const rand = seededRandom(12);
    // A million values, of which collectRanges keeps min, max and a bounded sample (here every 16th).
    const values = Float32Array.from({ length: 1_000_000 }, () => {
      const u = rand() - 0.5;
      return -Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
    });
    const signed = values.filter((_, i) => i % 16 === 0);
    let min = Infinity;
    let max = -Infinity;
    for (const v of values) [min, max] = [Math.min(min, v), Math.max(max, v)];
    const r: TensorRange = { min, max, signed, sample: signed.map(Math.abs).sort() };
    const [mLo, mHi] = calibratedRange(r, 'minmax');
    const [lo, hi] = calibratedRange(r, 'mse');
    expect(hi - lo).toBeLessThan(0.9 * (mHi - mLo));
    expect(lo).toBeLessThan(0);
    expect(hi).toBeGreaterThan(0);
    // Measured on all million values, not only the sample it searched on.
    const mse = quantizationMse(values, lo, hi);
    expect(mse).toBeLessThan(0.8 * quantizationMse(values, mLo, mHi));
    expect(mse).toBeLessThan(quantizationMse(values, ...calibratedRange(r, 'percentile')));
  });

  it('keeps the full range of a uniform tensor (nothing to clip)', () => {
    const rand = seededRandom(13);
    const r = rangeOf(Float32Array.from({ length: 20_000 }, () => rand() * 6));
    const [lo, hi] = calibratedRange(r, 'mse');
    expect(lo).toBe(0);
    expect(hi).toBeGreaterThan(0.97 * r.max);
  });
});
