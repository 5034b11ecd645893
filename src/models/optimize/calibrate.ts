import * as ort from 'onnxruntime-node';
import { seededRandom } from '../keras/synthetic-resnet.js';
import type { OnnxGraph } from '../onnx/onnx-graph.js';

/** Observed value range of one tensor over the calibration frames. */
export interface TensorRange {
  min: number;
  max: number;
  /** Absolute values, for percentile calibration (a bounded sample). */
  sample: Float32Array;
}

export type CalibrationMethod = 'minmax' | 'percentile';

/**
 * Runs the fp32 graph over calibration inputs with every activation exposed as an output, and records each
 * tensor's range. The graph itself is not modified.
 */
export async function collectRanges(graph: OnnxGraph, inputs: Float32Array[], dims: number[], tensors: string[]): Promise<Map<string, TensorRange>> {
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
        for (let i = 0, j = 0; i < data.length; i += step, j++) chunk[j] = Math.abs(data[Math.min(data.length - 1, i + Math.floor(rand() * step))]!);
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
    r.sample = all.sort();
  }
  return ranges;
}

/** The range used for quantization: the observed min/max, or clipped at a percentile of |x| (outliers cost resolution). */
export function calibratedRange(r: TensorRange, method: CalibrationMethod, percentile = 99.99): [number, number] {
  let { min, max } = r;
  if (method === 'percentile' && r.sample.length > 0) {
    const cap = r.sample[Math.min(r.sample.length - 1, Math.floor((percentile / 100) * r.sample.length))]!;
    min = Math.max(min, -cap);
    max = Math.min(max, cap);
  }
  // Zero must be exactly representable.
  return [Math.min(min, 0), Math.max(max, 0)];
}
