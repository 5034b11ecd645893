import { DataType, OnnxGraph, type OnnxNode } from '../onnx/onnx-graph.js';
import { integerWeightTypeForThisCpu, type IntegerWeightType } from '../tflite/tflite-to-onnx.js';
import { calibratedRange, collectRanges, type CalibrationMethod, type TensorRange } from './calibrate.js';

/** Ops that run as integer kernels once wrapped in Q/DQ (onnxruntime's QDQ fusions). */
const COMPUTE = new Set(['Conv', 'Gemm', 'Add', 'AveragePool', 'GlobalAveragePool']);
/** Ops that only move or select values: they keep their input's scale so onnxruntime drops their Q/DQ pair. */
const MOVE = new Set(['Transpose', 'Flatten', 'Reshape', 'MaxPool']);
/** Symmetric int8 weights. (7-bit weights, onnxruntime's "reduce_range" for CPUs without VNNI, lost agreement here.) */
const QMAX = 127;

/** The nodes quantization can turn into integer kernels, in graph order (what `keepFloat` indexes). */
export function computeNodes(g: OnnxGraph): OnnxNode[] {
  return g.nodes.filter((n) => COMPUTE.has(n.op));
}

export interface QuantizeOptions {
  calibration: Float32Array[];
  /** Input dims of one calibration array, e.g. [1, 32, 32, 3]. */
  dims: number[];
  method: CalibrationMethod;
  /** Compute nodes (see computeNodes) left in float: the most sensitive layers, e.g. the classifier head. */
  keepFloat?: (node: OnnxNode, index: number, computeNodes: OnnxNode[]) => boolean;
  /** Ranges from an earlier calibration of the same fp32 graph (skips running it again). */
  ranges?: Map<string, TensorRange>;
  /**
   * Instead of int8 Q/DQ, simulate this many bits in float (same placement and ranges; activations asymmetric over
   * the calibrated range, weights per-channel symmetric): how many bits the model needs, not something to ship.
   */
  simulateBits?: number;
  /**
   * How the int8 levels are stored (default: integerWeightTypeForThisCpu()): 'uint8' (level + 128, zero point 128:
   * the same real numbers) on x86 CPUs without VNNI, where onnxruntime's u8 × s8 kernel saturates in 16 bits.
   */
  weightType?: IntegerWeightType;
}

/** Calibrates every tensor the full-int8 arrangement would quantize (reusable for mixed variants). */
export async function calibrateAll(fp32: OnnxGraph, calibration: Float32Array[], dims: number[]): Promise<Map<string, TensorRange>> {
  return collectRanges(fp32, calibration, dims, rangeTensors(fp32, planQuantization(fp32, new Set())));
}

/**
 * Which tensors get a Q/DQ pair, each mapped to the tensor whose range it uses: a compute node's activation
 * inputs and its output (after a Relu that follows it alone, so the Relu stays inside the quantized span), and
 * data-movement ops borrowing their input's range.
 */
function planQuantization(g: OnnxGraph, floatNodes: ReadonlySet<OnnxNode>): Map<string, string> {
  const inputName = g.inputs[0]!.name;
  const quantized = new Map<string, string>();
  for (const node of g.nodes) {
    if (COMPUTE.has(node.op) && !floatNodes.has(node)) {
      for (const input of activationInputs(g, node)) if (!quantized.has(input)) quantized.set(input, input);
      const out = fusedReluOutput(g, node.outputs[0]!);
      quantized.set(out, out);
    } else if (MOVE.has(node.op)) {
      const src = node.inputs[0]!;
      if (quantized.has(src) || src === inputName) {
        if (!quantized.has(src)) quantized.set(src, src);
        quantized.set(node.outputs[0]!, quantized.get(src)!);
      }
    }
  }
  return quantized;
}

/** The tensors to calibrate for a plan (the graph input's range comes from the calibration data itself). */
function rangeTensors(g: OnnxGraph, plan: Map<string, string>): string[] {
  return [...new Set(plan.values())].filter((t) => t !== g.inputs[0]!.name);
}

/** `t`, or the output of the Relu (or Clip from 0) that is its only consumer. */
function fusedReluOutput(g: OnnxGraph, t: string): string {
  const users = g.consumers(t);
  const only = users.length === 1 ? users[0] : undefined;
  return only !== undefined && (only.op === 'Relu' || isClip0(g, only)) ? only.outputs[0]! : t;
}

interface QParams {
  scale: number;
  zeroPoint: number;
}

/**
 * Static int8 post-training quantization in QDQ form: uint8 activations (asymmetric, calibrated), int8
 * per-channel symmetric weights, int32 biases. Arranged the way onnxruntime fuses it: a Relu after Conv or Add
 * is kept inside the quantized span (the output Q sits after it, with zero point 0, so onnxruntime removes
 * the Relu and runs QLinearConv / QLinearAdd), and data-movement ops share their input's scale so no float op is
 * left between Q/DQ pairs. Everything after the last quantizable op (e.g. Softmax) stays float.
 */
export async function quantizeQdq(fp32: OnnxGraph, options: QuantizeOptions): Promise<OnnxGraph> {
  const g = cloneGraph(fp32);
  const inputName = g.inputs[0]!.name;
  const compute = computeNodes(g);
  const floatNodes = new Set(compute.filter((n, i) => options.keepFloat?.(n, i, compute) === true));
  const quantized = planQuantization(g, floatNodes);
  const ranges = options.ranges ?? (await collectRanges(fp32, options.calibration, options.dims, rangeTensors(g, quantized)));
  const inputRange = rangeOfInputs(options.calibration);
  const params = new Map<string, QParams>();
  for (const [tensor, rangeOf] of quantized) {
    const r = rangeOf === inputName ? inputRange : ranges.get(rangeOf);
    if (r === undefined) continue;
    const [lo, hi] = rangeOf === inputName ? [Math.min(0, r.min), Math.max(0, r.max)] : calibratedRange(r as TensorRange, options.method);
    params.set(tensor, uint8Params(lo, hi));
  }

  const bits = options.simulateBits;
  if (bits !== undefined) {
    for (const node of g.nodes) {
      if ((node.op === 'Conv' || node.op === 'Gemm') && !floatNodes.has(node) && params.has(node.inputs[0]!)) roundWeights(g, node, bits);
    }
    for (const [tensor, p] of params) simulateActivation(g, tensor, p, bits);
    g.pruneInitializers();
    return g;
  }
  const weightType = options.weightType ?? integerWeightTypeForThisCpu();
  // Weights and biases first: they need the input scales.
  for (const node of [...g.nodes]) {
    if ((node.op === 'Conv' || node.op === 'Gemm') && !floatNodes.has(node)) quantizeWeights(g, node, params.get(node.inputs[0]!)?.scale, weightType);
  }
  // Then a Q → DQ pair on every quantized activation, rewiring its consumers (not the Q itself) to the DQ output.
  for (const [tensor, p] of params) {
    const scale = g.constant(`${tensor}_scale`, [], Float32Array.of(p.scale));
    const zp = g.constant(`${tensor}_zp`, [], Uint8Array.of(p.zeroPoint), DataType.UINT8);
    const q = g.fresh(`${tensor}_q`);
    const dq = g.fresh(`${tensor}_dq`);
    const users = g.consumers(tensor);
    // Right after the producer (index 0 for the graph input, which has none).
    const at = g.nodes.findIndex((n) => n.outputs.includes(tensor)) + 1;
    g.nodes.splice(at, 0, { op: 'QuantizeLinear', inputs: [tensor, scale, zp], outputs: [q], name: g.fresh('Q') }, { op: 'DequantizeLinear', inputs: [q, scale, zp], outputs: [dq], name: g.fresh('DQ') });
    for (const u of users) u.inputs = u.inputs.map((i) => (i === tensor ? dq : i));
  }
  return g;
}

function activationInputs(g: OnnxGraph, node: OnnxNode): string[] {
  const count = node.op === 'Conv' || node.op === 'Gemm' ? 1 : node.inputs.length;
  return node.inputs.slice(0, count).filter((t) => !g.initializers.has(t));
}

function isClip0(g: OnnxGraph, node: OnnxNode): boolean {
  if (node.op !== 'Clip') return false;
  const lo = g.initializers.get(node.inputs[1] ?? '')?.data;
  return lo !== undefined && lo[0] === 0;
}

function uint8Params(lo: number, hi: number): QParams {
  const scale = hi - lo > 0 ? (hi - lo) / 255 : 1;
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-lo / scale))) };
}

/** Per-channel symmetric rounding of a Conv / Gemm weight to `bits` bits, kept in float (simulation). */
function roundWeights(g: OnnxGraph, node: OnnxNode, bits: number): void {
  const w = g.initializers.get(node.inputs[1]!);
  if (w === undefined || !(w.data instanceof Float32Array)) return;
  const { scales, levels, channelOf } = symmetricPerChannel(w.data, w.dims, node.op === 'Gemm', 2 ** (bits - 1) - 1);
  const data = Float32Array.from(levels, (l, i) => l * scales[channelOf(i)]!);
  node.inputs = [node.inputs[0]!, g.constant(`${node.inputs[1]!}_${bits}bit`, w.dims, data), ...node.inputs.slice(2)];
}

/**
 * Symmetric per-output-channel quantization of a Conv weight [O, I, kh, kw] (channel = axis 0) or a Gemm B
 * [in, out] (channel = axis 1): each channel's scale maps its largest |w| to ±qmax.
 */
function symmetricPerChannel(data: Float32Array, dims: number[], gemm: boolean, qmax: number) {
  const channels = gemm ? dims[1]! : dims[0]!;
  const perChannel = data.length / channels;
  const channelOf = (i: number) => (gemm ? i % channels : Math.floor(i / perChannel));
  const max = new Float32Array(channels);
  for (let i = 0; i < data.length; i++) max[channelOf(i)] = Math.max(max[channelOf(i)]!, Math.abs(data[i]!));
  const scales = Float64Array.from(max, (m) => (m > 0 ? m / qmax : 1));
  const levels = Int32Array.from(data, (v, i) => Math.max(-qmax, Math.min(qmax, Math.round(v / scales[channelOf(i)]!))));
  return { channels, scales, levels, channelOf };
}

/** x → (clip(round(x / s) + z, 0, 2^bits − 1) − z) · s in float ops, over the 8-bit range `p` covers. */
function simulateActivation(g: OnnxGraph, tensor: string, p: QParams, bits: number): void {
  const lo = -p.zeroPoint * p.scale;
  const levels = 2 ** bits - 1;
  const scale = (255 * p.scale) / levels;
  const zero = Math.round(-lo / scale);
  const users = g.consumers(tensor);
  const s = g.constant(`${tensor}_sim_scale`, [], Float32Array.of(scale));
  const z = g.constant(`${tensor}_sim_zp`, [], Float32Array.of(zero));
  const min = g.constant(`${tensor}_sim_min`, [], Float32Array.of(0));
  const max = g.constant(`${tensor}_sim_max`, [], Float32Array.of(levels));
  const names = ['div', 'round', 'shift', 'clip', 'unshift', 'sim'].map((n) => g.fresh(`${tensor}_${n}`));
  const [div, round, shift, clip, unshift, out] = names as [string, string, string, string, string, string];
  const chain: OnnxNode[] = [
    { op: 'Div', inputs: [tensor, s], outputs: [div], name: g.fresh('SimDiv') },
    { op: 'Round', inputs: [div], outputs: [round], name: g.fresh('SimRound') },
    { op: 'Add', inputs: [round, z], outputs: [shift], name: g.fresh('SimShift') },
    { op: 'Clip', inputs: [shift, min, max], outputs: [clip], name: g.fresh('SimClip') },
    { op: 'Sub', inputs: [clip, z], outputs: [unshift], name: g.fresh('SimUnshift') },
    { op: 'Mul', inputs: [unshift, s], outputs: [out], name: g.fresh('SimMul') },
  ];
  g.nodes.splice(g.nodes.findIndex((n) => n.outputs.includes(tensor)) + 1, 0, ...chain);
  for (const u of users) u.inputs = u.inputs.map((i) => (i === tensor ? out : i));
}

/** Conv weight [O, I, kh, kw] (axis 0) or Gemm B [in, out] (axis 1) → int8 levels per output channel (stored as int8 or uint8 + 128); bias → int32. */
function quantizeWeights(g: OnnxGraph, node: OnnxNode, inputScale: number | undefined, weightType: IntegerWeightType): void {
  if (inputScale === undefined) return;
  const wName = node.inputs[1]!;
  const w = g.initializers.get(wName);
  if (w === undefined || !(w.data instanceof Float32Array)) return;
  const gemm = node.op === 'Gemm';
  const perChannel = symmetricPerChannel(w.data, w.dims, gemm, QMAX);
  const { channels, levels } = perChannel;
  const scales = Float32Array.from(perChannel.scales);
  const axis = gemm ? 1 : 0;
  const unsigned = weightType === 'uint8';
  const wq = unsigned
    ? g.constant(`${wName}_uint8`, w.dims, Uint8Array.from(levels, (l) => l + 128), DataType.UINT8)
    : g.constant(`${wName}_int8`, w.dims, Int8Array.from(levels), DataType.INT8);
  const ws = g.constant(`${wName}_scale`, [channels], scales);
  const wz = unsigned
    ? g.constant(`${wName}_zp`, [channels], new Uint8Array(channels).fill(128), DataType.UINT8)
    : g.constant(`${wName}_zp`, [channels], new Int8Array(channels), DataType.INT8);
  const wdq = g.fresh(`${wName}_dq`);
  const nodes: OnnxNode[] = [{ op: 'DequantizeLinear', inputs: [wq, ws, wz], outputs: [wdq], name: g.fresh('DQw'), attrs: { axis } }];
  const bName = node.inputs[2];
  const b = bName === undefined ? undefined : g.initializers.get(bName);
  let bdq: string | undefined;
  if (b !== undefined && b.data instanceof Float32Array) {
    const bs = Float32Array.from(scales, (s) => s * inputScale);
    const bq = Int32Array.from(b.data, (v, c) => Math.round(v / bs[c]!));
    const bqName = g.constant(`${bName}_int32`, b.dims, bq, DataType.INT32);
    const bsName = g.constant(`${bName}_scale`, [channels], bs);
    const bzName = g.constant(`${bName}_zp`, [channels], new Int32Array(channels), DataType.INT32);
    bdq = g.fresh(`${bName}_dq`);
    nodes.push({ op: 'DequantizeLinear', inputs: [bqName, bsName, bzName], outputs: [bdq], name: g.fresh('DQb'), attrs: { axis: 0 } });
    g.initializers.delete(bName!);
  }
  g.initializers.delete(wName);
  node.inputs = [node.inputs[0]!, wdq, ...(bdq === undefined ? node.inputs.slice(2) : [bdq])];
  g.nodes.splice(g.nodes.indexOf(node), 0, ...nodes);
}

function rangeOfInputs(inputs: Float32Array[]): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const x of inputs) {
    for (let i = 0; i < x.length; i++) {
      min = Math.min(min, x[i]!);
      max = Math.max(max, x[i]!);
    }
  }
  return { min, max };
}

/** A deep copy (initializer data included), so quantizing never alters the fp32 graph. */
export function cloneGraph(src: OnnxGraph): OnnxGraph {
  const g = new OnnxGraph(src.name);
  g.nodes = src.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], ...(n.attrs === undefined ? {} : { attrs: { ...n.attrs } }) }));
  for (const [k, v] of src.initializers) g.initializers.set(k, { ...v, dims: [...v.dims], data: v.data.slice() as typeof v.data });
  g.inputs = src.inputs.map((v) => ({ ...v, dims: [...v.dims] }));
  g.outputs = src.outputs.map((v) => ({ ...v, dims: [...v.dims] }));
  g.adoptCounter(src);
  return g;
}
