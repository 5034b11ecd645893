import * as ort from 'onnxruntime-node';
import type { OnnxGraph } from '../onnx/onnx-graph.js';
import { cloneGraph } from './quantize-qdq.js';

/**
 * Per-channel mean (channel = axis 1, NCHW as Conv writes it) of each tensor over the frames, running `g` unoptimised
 * so a QDQ graph computes exactly what its Q/DQ pairs say (no fused integer kernel).
 */
export async function channelMeans(g: OnnxGraph, frames: Float32Array[], dims: number[], tensors: string[]): Promise<Map<string, Float64Array>> {
  const session = await ort.InferenceSession.create(g.toBytes(g.opset, tensors), { graphOptimizationLevel: 'disabled' });
  const sums = new Map<string, Float64Array>();
  try {
    for (const x of frames) {
      const r = await session.run({ [g.inputs[0]!.name]: new ort.Tensor('float32', x, dims) }, tensors);
      for (const name of tensors) {
        const t = r[name];
        if (t === undefined || t.type !== 'float32' || t.dims.length < 2) continue;
        const data = t.data as Float32Array;
        const channels = t.dims[1]!;
        const inner = data.length / (t.dims[0]! * channels);
        const sum = sums.get(name) ?? new Float64Array(channels);
        for (let at = 0, block = 0; at < data.length; at += inner, block++) {
          let s = 0;
          for (let i = at; i < at + inner; i++) s += data[i]!;
          sum[block % channels]! += s / (inner * t.dims[0]!);
        }
        sums.set(name, sum);
      }
    }
  } finally {
    await session.release();
  }
  for (const s of sums.values()) for (let c = 0; c < s.length; c++) s[c]! /= frames.length;
  return sums;
}

export interface BiasCorrectionResult {
  /** The quantized graph built from the corrected float graph. */
  quantized: OnnxGraph;
  /** The float graph with corrected biases (what `quantize` was given last). */
  corrected: OnnxGraph;
  /** Convs corrected. */
  layers: number;
}

/**
 * Empirical bias correction (Nagel et al. 2019, §4.2, with calibration statistics instead of BatchNorm's): rounding a
 * layer's weights moves its output's per-channel mean (errors that do not average out, e.g. many small taps of a
 * depthwise kernel rounded the same way): E[(W̃ − W) x]. For each quantized Conv, a float twin with the original
 * weights reads the same (quantized) input; the difference of their channel means over the calibration frames is
 * that layer's own shift, which is subtracted from its float bias before quantizing again. Measuring layer by layer
 * (not quantized network against float network) keeps an upstream layer's shift from being corrected twice.
 */
export async function correctBias(
  fp32: OnnxGraph,
  quantize: (g: OnnxGraph) => Promise<OnnxGraph>,
  calibration: Float32Array[],
  dims: number[],
): Promise<BiasCorrectionResult> {
  const probe = await quantize(fp32);
  const floatConvs = new Map(fp32.nodes.filter((n) => n.op === 'Conv').map((n) => [n.outputs[0]!, n]));
  const pairs: Array<[string, string]> = [];
  for (const node of [...probe.nodes]) {
    const original = floatConvs.get(node.outputs[0]!);
    const w = fp32.initializers.get(original?.inputs[1] ?? '');
    // Only Convs whose weights were quantized (their weight now comes from a DequantizeLinear).
    if (node.op !== 'Conv' || original === undefined || w === undefined || probe.producer(node.inputs[1]!)?.op !== 'DequantizeLinear') continue;
    const b = fp32.initializers.get(original.inputs[2] ?? '');
    const inputs = [node.inputs[0]!, probe.constant('twin_w', w.dims, w.data)];
    if (b !== undefined) inputs.push(probe.constant('twin_b', b.dims, b.data));
    const twin = probe.fresh(`${node.outputs[0]!}_float_twin`);
    probe.nodes.push({ op: 'Conv', inputs, outputs: [twin], name: probe.fresh('FloatTwin'), ...(node.attrs === undefined ? {} : { attrs: node.attrs }) });
    pairs.push([node.outputs[0]!, twin]);
  }
  const means = await channelMeans(probe, calibration, dims, pairs.flat());
  const corrected = cloneGraph(fp32);
  let layers = 0;
  for (const node of corrected.nodes) {
    const pair = pairs.find(([out]) => out === node.outputs[0]);
    const got = pair === undefined ? undefined : means.get(pair[0]);
    const want = pair === undefined ? undefined : means.get(pair[1]);
    if (got === undefined || want === undefined) continue;
    const bName = node.inputs[2];
    const old = bName === undefined ? undefined : corrected.initializers.get(bName);
    const bias = old?.data instanceof Float32Array ? Float32Array.from(old.data) : new Float32Array(want.length);
    for (let c = 0; c < bias.length; c++) bias[c] = bias[c]! - (got[c]! - want[c]!);
    node.inputs = [node.inputs[0]!, node.inputs[1]!, corrected.constant(`${bName ?? node.outputs[0]!}_corrected`, [bias.length], bias)];
    layers++;
  }
  corrected.pruneInitializers();
  return { quantized: await quantize(corrected), corrected, layers };
}

/** Mean over tensors and channels of |a − b|. */
export function meanAbsShift(a: Map<string, Float64Array>, b: Map<string, Float64Array>): number {
  let sum = 0;
  let n = 0;
  for (const [name, x] of a) {
    const y = b.get(name);
    if (y === undefined) continue;
    for (let c = 0; c < x.length; c++, n++) sum += Math.abs(y[c]! - x[c]!);
  }
  return n === 0 ? 0 : sum / n;
}
