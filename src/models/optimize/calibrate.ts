import * as ort from 'onnxruntime-node';
import { seededRandom } from '../keras/synthetic-resnet.js';
import type { OnnxGraph } from '../onnx/onnx-graph.js';

/** Observed value range of one tensor over the calibration frames. */
export interface TensorRange {
  min: number;
  max: number;
  /** Absolute values, for percentile calibration (a bounded sample), sorted. */
  sample: Float32Array;
  /** The same sample with signs, for the MSE search (absent: the abs sample stands in). */
  signed?: Float32Array;
}

/**
 * How a tensor's quantization range is chosen: the observed min/max; clipped at the 99.99th percentile of |x|; or
 * the range whose uint8 rounding (clipping included) has the least mean squared error on the calibration sample.
 */
export type CalibrationMethod = 'minmax' | 'percentile' | 'mse';

/**
 * Runs the fp32 graph over calibration inputs with every activation exposed as an output, and records each
 * tensor's range. The graph itself is not modified.
 */
export async function collectRanges(graph: OnnxGraph, inputs: Float32Array[], dims: number[], tensors: string[]): Promise<Map<string, TensorRange>> {
  if (tensors.length === 0) return new Map();
  const session = await ort.InferenceSession.create(graph.toBytes(graph.opset, tensors), { graphOptimizationLevel: 'disabled' });
  const ranges = new Map<string, TensorRange>();
  const samples = new Map<string, Float32Array[]>();
  const rand = seededRandom(1);
  try {
    for (const x of inputs) {
      const result = await session.run({ [graph.inputs[0]!.name]: new ort.Tensor('float32', x, dims) }, tensors);
      for (const name of tensors) {
        // Only float tensors are quantized: index arithmetic (int Add, Reshape of shapes) keeps its type.
        const tensor = result[name];
        if (tensor === undefined || tensor.type !== 'float32') continue;
        const data = tensor.data as Float32Array;
        let lo = Infinity;
        let hi = -Infinity;
        for (let i = 0; i < data.length; i++) {
          const v = data[i]!;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        const r = ranges.get(name);
        ranges.set(name, { min: Math.min(lo, r?.min ?? Infinity), max: Math.max(hi, r?.max ?? -Infinity), sample: new Float32Array() });
        const s = samples.get(name) ?? [];
        // About 64k samples per tensor over all frames: enough for a 99.99th percentile, bounded for big models.
        // One value at a random place in each window of `step` (seeded): a fixed stride would line up with the
        // tensor's rows and sample one column only (e.g. every 32nd value of a 32-wide map is its left edge).
        const step = Math.max(1, Math.floor(data.length / Math.ceil(65536 / inputs.length)));
        const chunk = new Float32Array(Math.ceil(data.length / step));
        for (let i = 0, j = 0; i < data.length; i += step, j++) chunk[j] = data[Math.min(data.length - 1, i + Math.floor(rand() * step))]!;
        s.push(chunk);
        samples.set(name, s);
      }
    }
  } finally {
    await session.release();
  }
  for (const [name, r] of ranges) {
    const chunks = samples.get(name) ?? [];
    const all = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    r.signed = all;
    r.sample = all.map(Math.abs).sort();
  }
  return ranges;
}

/** The range used for quantization: the observed min/max, clipped at a percentile of |x|, or the least-MSE range. */
export function calibratedRange(r: TensorRange, method: CalibrationMethod, percentile = 99.99): [number, number] {
  let { min, max } = r;
  if (method === 'percentile' && r.sample.length > 0) {
    const cap = r.sample[Math.min(r.sample.length - 1, Math.floor((percentile / 100) * r.sample.length))]!;
    min = Math.max(min, -cap);
    max = Math.min(max, cap);
  }
  if (method === 'mse') [min, max] = mseRange(r);
  // Zero must be exactly representable.
  return [Math.min(min, 0), Math.max(max, 0)];
}

/**
 * At most this many sample values enter the MSE search (every k-th of the sample): the error is mostly the rare
 * tail beyond the clip, which a smaller subsample misjudges.
 */
const MSE_SAMPLE = 65536;
const mseCache = new WeakMap<TensorRange, [number, number]>();

/**
 * The range [f·min, f·max], f in (0, 1], whose uint8 quantization (levels 0..255, zero exactly representable, values
 * outside clipped) has the least mean squared error on the tensor's calibration sample: a wide range wastes levels
 * on rare outliers, a narrow one clips them. Coarse grid, then a finer one around the best.
 */
export function mseRange(r: TensorRange): [number, number] {
  const cached = mseCache.get(r);
  if (cached !== undefined) return cached;
  const all = r.signed ?? r.sample;
  if (all.length === 0) return [r.min, r.max];
  const stride = Math.max(1, Math.floor(all.length / MSE_SAMPLE));
  const xs = new Float64Array(Math.ceil(all.length / stride));
  for (let i = 0, j = 0; i < all.length; i += stride, j++) xs[j] = all[i]!;
  const lo0 = Math.min(r.min, 0);
  const hi0 = Math.max(r.max, 0);
  let best = { f: 1, err: quantizationMse(xs, lo0, hi0) };
  const tryF = (f: number) => {
    const err = quantizationMse(xs, f * lo0, f * hi0);
    if (err < best.err) best = { f, err };
  };
  for (let f = 0.05; f < 1; f += 0.05) tryF(f);
  const centre = best.f;
  for (let f = centre - 0.05; f <= centre + 0.05; f += 0.005) if (f > 0 && f <= 1) tryF(f);
  const range: [number, number] = [best.f * lo0, best.f * hi0];
  mseCache.set(r, range);
  return range;
}

/** Mean squared error of asymmetric uint8 quantization over [lo, hi] (lo ≤ 0 ≤ hi), values outside clipped. */
export function quantizationMse(xs: ArrayLike<number>, lo: number, hi: number): number {
  if (hi - lo <= 0) {
    let e = 0;
    for (let i = 0; i < xs.length; i++) e += xs[i]! ** 2;
    return e / Math.max(1, xs.length);
  }
  const scale = (hi - lo) / 255;
  const zero = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  let e = 0;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    const q = Math.min(255, Math.max(0, Math.round(x / scale) + zero));
    e += (x - (q - zero) * scale) ** 2;
  }
  return e / Math.max(1, xs.length);
}
