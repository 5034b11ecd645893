import { DataType, OnnxGraph, type OnnxNode } from '../onnx/onnx-graph.js';
import { integerWeightTypeForThisCpu, type IntegerWeightType } from '../tflite/tflite-to-onnx.js';
import { calibratedRange, collectRanges, type CalibrationMethod, type TensorRange } from './calibrate.js';

/** Ops that run as integer kernels once wrapped in Q/DQ (onnxruntime's QDQ fusions), whatever feeds them. */
const COMPUTE = new Set(['Conv', 'Gemm', 'AveragePool', 'GlobalAveragePool']);
/**
 * Elementwise ops with integer kernels (QLinearAdd, QLinearMul) — quantized only inside the quantized span: each
 * input already quantized or a scalar constant. Elsewhere (a detector's box decoding: coordinates, indices) they
 * stay float, so their values are never rounded to 256 levels.
 */
const ELEMENTWISE = new Set(['Add', 'Mul', 'Concat']);
/**
 * Ops that only move, select or interpolate values: they run on the integers themselves (onnxruntime has uint8
 * kernels for each), keeping their input's scale — no Q/DQ of their own.
 */
const MOVE = new Set(['Transpose', 'Flatten', 'Reshape', 'MaxPool', 'Resize']);
/**
 * Lookup-table activations (QLinearSigmoid): quantized only as a gate, every consumer multiplying it with a
 * quantized feature map (squeeze-and-excitation). A detector's score Sigmoid stays float: its exact values decide
 * peaks and ties.
 */
const LOOKUP = new Set(['Sigmoid']);
/** Symmetric int8 weights. (7-bit weights, onnxruntime's "reduce_range" for CPUs without VNNI, lost agreement here.) */
const QMAX = 127;
/** Largest |int32 bias level| written: 2^30, half of int32, leaving room for the products the kernel adds to it. */
const BIAS_LEVEL_LIMIT = 2 ** 30;

/**
 * The nodes quantization turns into integer kernels, in graph order (what `keepFloat` indexes): every Conv, Gemm
 * and pooling, and the Adds and Muls inside the quantized span. Multiplications by a positive constant are not
 * among them: they cost no node at all (see planQuantization).
 */
export function computeNodes(g: OnnxGraph): OnnxNode[] {
  return planQuantization(prepareForQuantization(g), new Set()).nodes;
}

/**
 * How a quantized tensor gets its parameters: calibrated over its own range; the same as another tensor (ops that
 * only move values); or another tensor's times a positive constant — a Mul by that constant costs nothing then:
 * its consumers read the other tensor's integers through a DequantizeLinear whose scale carries the factor (e.g.
 * hard-swish's x / 6).
 */
type Source = { kind: 'range'; of: string } | { kind: 'same'; as: string } | { kind: 'scaled'; of: string; factor: number };

interface QuantizationPlan {
  /** Quantized tensors, in graph order. */
  tensors: Map<string, Source>;
  /** Compute and elementwise nodes quantized. */
  nodes: OnnxNode[];
}

export interface QuantizeOptions {
  calibration: Float32Array[];
  /** Input dims of one calibration array, e.g. [1, 32, 32, 3]. */
  dims: number[];
  method: CalibrationMethod;
  /** Compute nodes (see computeNodes) left in float: the most sensitive layers, e.g. the classifier head. */
  keepFloat?: (node: OnnxNode, index: number, computeNodes: OnnxNode[]) => boolean;
  /**
   * Activation tensors left unquantized (see quantizedTensors): their producer and consumers run in float. What the
   * sensitivity-guided mixed precision search decides.
   */
  floatTensors?: ReadonlySet<string>;
  /** Ranges from an earlier calibration of the same fp32 graph (skips running it again). */
  ranges?: Map<string, TensorRange>;
  /**
   * Instead of int8 Q/DQ, simulate this many bits in float (same placement and ranges; activations asymmetric over
   * the calibrated range, weights per-channel symmetric): how many bits the model needs, not something to ship.
   */
  simulateBits?: number;
  /** With simulateBits: round only the weights (activations stay float) or only the activations. */
  simulateOnly?: 'weights' | 'activations';
  /**
   * How the int8 levels are stored (default: integerWeightTypeForThisCpu()): 'uint8' (level + 128, zero point 128:
   * the same real numbers) on x86 CPUs without VNNI, where onnxruntime's u8 × s8 kernel saturates in 16 bits.
   */
  weightType?: IntegerWeightType;
}

/** Calibrates every tensor the full-int8 arrangement would quantize (reusable for mixed variants). */
export async function calibrateAll(fp32: OnnxGraph, calibration: Float32Array[], dims: number[]): Promise<Map<string, TensorRange>> {
  const g = prepareForQuantization(fp32);
  return collectRanges(g, calibration, dims, rangeTensors(planQuantization(g, new Set())));
}

/**
 * Which tensors get a Q/DQ pair, and how each gets its parameters: the activation inputs and the output of each
 * quantized node (after a Relu or Clip that follows it alone, so the activation stays inside the quantized span
 * and onnxruntime folds it into the output's saturation), data-movement ops sharing their input's, and Muls by a
 * positive constant folded into a scale. `floatNodes` (from a first plan's nodes) stay float.
 */
function planQuantization(g: OnnxGraph, floatNodes: ReadonlySet<OnnxNode>, floatTensors: ReadonlySet<string> = new Set()): QuantizationPlan {
  const inputName = g.inputs[0]!.name;
  const graphOutputs = new Set(g.outputs.map((o) => o.name));
  const tensors = new Map<string, Source>();
  const nodes: OnnxNode[] = [];
  const quantizedOrInput = (t: string) => tensors.has(t) || t === inputName;
  for (const node of g.nodes) {
    const out = node.outputs[0]!;
    const scaled = positiveScaleOf(g, node);
    if (scaled !== undefined && tensors.has(scaled.input) && !graphOutputs.has(out) && !floatTensors.has(out)) {
      tensors.set(out, { kind: 'scaled', of: scaled.input, factor: scaled.factor });
      continue;
    }
    const inSpan = (n: OnnxNode) => n.inputs.every((t) => t === '' || scalarOf(g, t) !== undefined || quantizedOrInput(t)) && n.inputs.some((t) => !g.initializers.has(t));
    const quantizable =
      COMPUTE.has(node.op) ||
      (ELEMENTWISE.has(node.op) && inSpan(node)) ||
      (LOOKUP.has(node.op) && inSpan(node) && !graphOutputs.has(out) && isGateOnly(g, out, quantizedOrInput));
    const touchesFloat = () => floatTensors.has(fusedReluOutput(g, out)) || activationInputs(g, node).some((t) => floatTensors.has(t));
    if (quantizable && !floatNodes.has(node) && !touchesFloat()) {
      nodes.push(node);
      for (const input of activationInputs(g, node)) if (!tensors.has(input)) tensors.set(input, { kind: 'range', of: input });
      const fused = fusedReluOutput(g, out);
      tensors.set(fused, { kind: 'range', of: fused });
    } else if (MOVE.has(node.op)) {
      const src = node.inputs[0]!;
      // A graph output keeps its float name and values: the move is not rewired onto integers.
      if (quantizedOrInput(src) && !floatTensors.has(out) && !graphOutputs.has(out)) {
        if (!tensors.has(src)) tensors.set(src, { kind: 'range', of: src });
        tensors.set(out, { kind: 'same', as: src });
      }
    }
  }
  return { tensors, nodes };
}

/** Whether `t` is only ever a gate: every consumer multiplies it with a quantized feature map (squeeze-and-excitation). */
function isGateOnly(g: OnnxGraph, t: string, quantized: (t: string) => boolean): boolean {
  const users = g.consumers(t);
  return users.length > 0 && users.every((c) => c.op === 'Mul' && c.inputs.length === 2 && c.inputs.some((i) => i !== t && !g.initializers.has(i) && quantized(i)));
}

/** The tensors to calibrate for a plan (the graph input's range comes from the calibration data itself). */
function rangeTensors(plan: QuantizationPlan): string[] {
  return [...plan.tensors.values()].flatMap((s) => (s.kind === 'range' ? [s.of] : []));
}

/**
 * A scalar initializer's value (shape [] or [1]: a one-element constant of higher rank would broadcast its operand
 * to that rank, which folding it away or rebuilding it as a scalar would lose).
 */
function scalarOf(g: OnnxGraph, t: string): number | undefined {
  const init = g.initializers.get(t);
  return init !== undefined && init.data.length === 1 && init.dims.length <= 1 && init.data instanceof Float32Array ? init.data[0] : undefined;
}

/** `Mul(x, k)`, `Mul(k, x)` or `Div(x, k)` with a positive, finite scalar k: x and the factor. */
function positiveScaleOf(g: OnnxGraph, node: OnnxNode): { input: string; factor: number } | undefined {
  if ((node.op !== 'Mul' && node.op !== 'Div') || node.inputs.length !== 2) return undefined;
  const [a, b] = node.inputs as [string, string];
  const kb = g.initializers.has(a) ? undefined : scalarOf(g, b);
  const ka = node.op === 'Mul' && !g.initializers.has(b) ? scalarOf(g, a) : undefined;
  const [input, k] = kb !== undefined ? [a, kb] : ka !== undefined ? [b, ka] : [undefined, undefined];
  if (input === undefined || k === undefined) return undefined;
  const factor = node.op === 'Div' ? 1 / k : k;
  return Number.isFinite(factor) && factor > 0 ? { input, factor } : undefined;
}

/**
 * The graph quantization works on (a copy): a ReduceMean over the spatial axes of a 4-D tensor (squeeze-and-
 * excitation's pooling, which TensorFlow writes as a mean) becomes GlobalAveragePool, which onnxruntime runs as
 * an integer kernel; ReduceMean has none. A channels-last mean gets a Transpose on each side, which onnxruntime's
 * transpose optimizer cancels against the model's own. The same numbers in float.
 */
export function prepareForQuantization(src: OnnxGraph): OnnxGraph {
  const g = cloneGraph(src);
  const ranks = new Map<string, number | undefined>();
  for (const node of [...g.nodes]) {
    if (node.op !== 'ReduceMean' || node.attrs?.['keepdims'] === 0 || rankOf(g, node.inputs[0]!, ranks) !== 4) continue;
    const axesInit = node.inputs[1] === undefined ? undefined : g.initializers.get(node.inputs[1]);
    const axesAttr = node.attrs?.['axes'] as number[] | undefined;
    const axes = (axesAttr ?? (axesInit === undefined ? [] : Array.from(axesInit.data, Number)))
      .map((a) => (a < 0 ? a + 4 : a))
      .sort()
      .join(',');
    const at = g.nodes.indexOf(node);
    const out = node.outputs[0]!;
    if (axes === '2,3') {
      g.nodes[at] = { op: 'GlobalAveragePool', inputs: [node.inputs[0]!], outputs: [out], name: node.name };
    } else if (axes === '1,2') {
      const nchw = g.fresh(`${out}_nchw_in`);
      const pooled = g.fresh(`${out}_nchw`);
      g.nodes.splice(
        at,
        1,
        { op: 'Transpose', inputs: [node.inputs[0]!], outputs: [nchw], name: g.fresh('ToNchw'), attrs: { perm: [0, 3, 1, 2] } },
        { op: 'GlobalAveragePool', inputs: [nchw], outputs: [pooled], name: node.name },
        { op: 'Transpose', inputs: [pooled], outputs: [out], name: g.fresh('ToNhwc'), attrs: { perm: [0, 2, 3, 1] } },
      );
    }
  }
  return g;
}

/** Ops whose output has the rank of their first input. */
const SAME_RANK = new Set(['Conv', 'Relu', 'Clip', 'Sigmoid', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Resize', 'Concat', 'BatchNormalization', 'QuantizeLinear', 'DequantizeLinear']);

/** The rank of tensor `t` where the graph says it without running it (undefined where it does not). */
function rankOf(g: OnnxGraph, t: string, memo: Map<string, number | undefined>): number | undefined {
  if (memo.has(t)) return memo.get(t);
  memo.set(t, undefined);
  const input = g.inputs.find((i) => i.name === t);
  const init = g.initializers.get(t);
  const producer = g.nodes.find((n) => n.outputs[0] === t);
  let rank: number | undefined;
  if (input !== undefined) rank = input.dims.length;
  else if (init !== undefined) rank = init.dims.length;
  else if (producer === undefined) rank = undefined;
  else if (producer.op === 'Transpose') rank = (producer.attrs?.['perm'] as number[] | undefined)?.length;
  else if (SAME_RANK.has(producer.op) || (producer.op === 'ReduceMean' && producer.attrs?.['keepdims'] !== 0)) rank = rankOf(g, producer.inputs[0]!, memo);
  else if (['Add', 'Mul', 'Sub', 'Div'].includes(producer.op)) {
    const ranks = producer.inputs.map((i) => rankOf(g, i, memo));
    rank = ranks.every((r) => r !== undefined) ? Math.max(...(ranks as number[])) : undefined;
  }
  memo.set(t, rank);
  return rank;
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
  const g = prepareForQuantization(fp32);
  const inputName = g.inputs[0]!.name;
  const compute = planQuantization(g, new Set()).nodes;
  const floatNodes = new Set(compute.filter((n, i) => options.keepFloat?.(n, i, compute) === true));
  const plan = planQuantization(g, floatNodes, options.floatTensors);
  // Shared ranges come from the full plan; tensors only a mixed plan quantizes on their own (after a float tensor,
  // a Mul or a move that would have shared a range) are calibrated here.
  const ranges = new Map(options.ranges ?? []);
  const uncalibrated = rangeTensors(plan).filter((t) => t !== inputName && !ranges.has(t));
  for (const [t, r] of await collectRanges(g, options.calibration, options.dims, uncalibrated)) ranges.set(t, r);
  const inputRange = rangeOfInputs(options.calibration);
  const params = new Map<string, QParams>();
  for (const [tensor, source] of plan.tensors) {
    if (source.kind !== 'range') {
      const p = params.get(source.kind === 'same' ? source.as : source.of);
      if (p !== undefined) params.set(tensor, source.kind === 'same' ? p : { scale: p.scale * source.factor, zeroPoint: p.zeroPoint });
      continue;
    }
    const r = source.of === inputName ? inputRange : ranges.get(source.of);
    if (r === undefined) continue;
    const [lo, hi] = source.of === inputName ? [Math.min(0, r.min), Math.max(0, r.max)] : calibratedRange(r as TensorRange, options.method);
    params.set(tensor, uint8Params(lo, hi));
  }

  // Only the nodes that become integer kernels get integer weights: a Conv whose output stays float (floatTensors)
  // keeps float weights even when its input is quantized for another consumer.
  const integerNodes = new Set(plan.nodes);
  const bits = options.simulateBits;
  if (bits !== undefined) {
    for (const node of g.nodes) {
      if (options.simulateOnly === 'activations') break;
      if ((node.op === 'Conv' || node.op === 'Gemm') && integerNodes.has(node) && params.has(node.inputs[0]!)) roundWeights(g, node, bits);
    }
    // A folded scale is exact in float: its Mul stays, and its input is already rounded.
    for (const [tensor, p] of params) {
      if (options.simulateOnly !== 'weights' && plan.tensors.get(tensor)?.kind !== 'scaled') simulateActivation(g, tensor, p, bits);
    }
    g.pruneInitializers();
    return g;
  }
  const weightType = options.weightType ?? integerWeightTypeForThisCpu();
  // Weights and biases first: they need the input scales.
  for (const node of [...g.nodes]) {
    if ((node.op === 'Conv' || node.op === 'Gemm') && integerNodes.has(node)) quantizeWeights(g, node, params.get(node.inputs[0]!)?.scale, weightType);
  }
  // Scalar constants of quantized Adds and Muls (hard-swish's + 3): uint8 over [min(0, k), max(0, k)], so k itself
  // is a level (0 or 255), exact.
  for (const node of plan.nodes) {
    if (ELEMENTWISE.has(node.op)) node.inputs = node.inputs.map((t) => (g.initializers.has(t) ? quantizedScalar(g, t, node) : t));
  }
  // Then a Q → DQ pair on every quantized activation, rewiring its consumers (not the Q itself) to the DQ output;
  // a folded scale gets only a DQ of the integers it scales, and its Mul goes.
  const integersOf = new Map<string, { q: string; zp: string }>();
  for (const [tensor, p] of params) {
    const source = plan.tensors.get(tensor)!;
    const scale = g.constant(`${tensor}_scale`, [], Float32Array.of(p.scale));
    const users = g.consumers(tensor);
    const dq = g.fresh(`${tensor}_dq`);
    if (source.kind === 'scaled') {
      const integers = integersOf.get(source.of);
      const mul = g.nodes.find((n) => n.outputs[0] === tensor);
      if (integers === undefined || mul === undefined) continue;
      g.nodes.splice(g.nodes.indexOf(mul), 1, { op: 'DequantizeLinear', inputs: [integers.q, scale, integers.zp], outputs: [dq], name: g.fresh('DQscaled') });
      integersOf.set(tensor, integers);
    } else if (source.kind === 'same' && integersOf.has(source.as) && g.nodes.some((n) => n.outputs[0] === tensor)) {
      // The move runs on its input's integers; a DQ after it gives its consumers the values.
      const integers = integersOf.get(source.as)!;
      const move = g.nodes.find((n) => n.outputs[0] === tensor)!;
      const q = g.fresh(`${tensor}_q`);
      move.inputs = [integers.q, ...move.inputs.slice(1)];
      move.outputs = [q, ...move.outputs.slice(1)];
      g.nodes.splice(g.nodes.indexOf(move) + 1, 0, { op: 'DequantizeLinear', inputs: [q, scale, integers.zp], outputs: [dq], name: g.fresh('DQ') });
      integersOf.set(tensor, { q, zp: integers.zp });
    } else {
      const zp = g.constant(`${tensor}_zp`, [], Uint8Array.of(p.zeroPoint), DataType.UINT8);
      const q = g.fresh(`${tensor}_q`);
      // Right after the producer (index 0 for the graph input, which has none).
      const at = g.nodes.findIndex((n) => n.outputs.includes(tensor)) + 1;
      g.nodes.splice(at, 0, { op: 'QuantizeLinear', inputs: [tensor, scale, zp], outputs: [q], name: g.fresh('Q') }, { op: 'DequantizeLinear', inputs: [q, scale, zp], outputs: [dq], name: g.fresh('DQ') });
      integersOf.set(tensor, { q, zp });
    }
    for (const u of users) u.inputs = u.inputs.map((i) => (i === tensor ? dq : i));
  }
  // A tensor read only by folded Muls keeps its Q (their DQs read it) but not its own DQ.
  const graphOutputs = new Set(g.outputs.map((o) => o.name));
  g.nodes = g.nodes.filter((n) => n.op !== 'DequantizeLinear' || graphOutputs.has(n.outputs[0]!) || g.consumers(n.outputs[0]!).length > 0);
  g.pruneInitializers();
  return g;
}

/**
 * The activation tensors full int8 quantizes with a range of their own (the graph input excluded), in graph order:
 * the candidates mixed precision may leave in float.
 */
export function quantizedTensors(fp32: OnnxGraph): string[] {
  const g = prepareForQuantization(fp32);
  return rangeTensors(planQuantization(g, new Set())).filter((t) => t !== g.inputs[0]!.name);
}

export interface MaskedSimulation {
  /** The fp32 graph with every candidate tensor's 8-bit rounding simulated, each switched on by one mask element. */
  graph: OnnxGraph;
  /** Input [tensors.length]: 1 rounds that tensor, 0 leaves it exact. */
  maskName: string;
  tensors: string[];
  /** Where the quantized span ends (tensors read by float ops, or graph outputs): where errors are measured. */
  exits: string[];
  /** Multiply-accumulates of the integer kernels each tensor's quantization enables (its producer and consumers). */
  macs: Map<string, number>;
  /** Names of those nodes (in the prepared graph, whose node names the quantized graph keeps), per tensor. */
  nodesOf: Map<string, string[]>;
  /**
   * Elements converted at run time if only this tensor stayed float: its producer's quantized inputs are
   * dequantized and its consumers' quantized outputs quantized again (the islands' Q / DQ).
   */
  boundaryElements: Map<string, number>;
}

/**
 * One graph for a layer-by-layer sensitivity analysis: each candidate tensor (see quantizedTensors) gets its
 * calibrated 8-bit rounding simulated in float, blended in by its element of a mask input — so a single session
 * answers "what does rounding only this tensor do at the exits" for every tensor. `dimsOf` gives tensor shapes
 * (for the MAC counts).
 */
export async function maskedSimulation(fp32: OnnxGraph, options: QuantizeOptions, dimsOf: (t: string) => readonly number[] | undefined): Promise<MaskedSimulation> {
  const g = prepareForQuantization(fp32);
  const plan = planQuantization(g, new Set());
  const inputName = g.inputs[0]!.name;
  const tensors = rangeTensors(plan).filter((t) => t !== inputName);
  const ranges = options.ranges ?? (await collectRanges(g, options.calibration, options.dims, tensors));
  const planned = new Set(plan.nodes);
  const inPlan = (n: OnnxNode) => planned.has(n) || plan.tensors.has(n.outputs[0]!);
  const graphOutputs = new Set(g.outputs.map((o) => o.name));
  const exits = [...plan.tensors.keys()].filter((t) => t !== inputName && (graphOutputs.has(t) || g.consumers(t).some((c) => !inPlan(c))));
  const macs = new Map<string, number>();
  const nodesOf = new Map<string, string[]>();
  const boundaryElements = new Map<string, number>();
  const count = (dims: readonly number[] | undefined) => (dims ?? []).reduce((a, b) => a * b, 1);
  const macsOf = (n: OnnxNode) => {
    const w = n.op === 'Conv' || n.op === 'Gemm' ? g.initializers.get(n.inputs[1]!) : undefined;
    // Per output value: a Conv weight [O, I/group, kh, kw] has I/group·kh·kw MACs, a Gemm B [in, out] has `in`.
    const perOutput = w === undefined ? 1 : channelsLast(n) ? w.dims[0]! : w.dims.slice(1).reduce((a, b) => a * b, 1);
    return count(dimsOf(n.outputs[0]!)) * perOutput;
  };
  // For the islands' conversions: quantized tensors an integer kernel writes (directly or after its fused Relu), and
  // whether integer kernels go on reading one.
  const producedInt8 = new Set([...planned].flatMap((n) => [n.outputs[0]!, fusedReluOutput(g, n.outputs[0]!)]).filter((x) => plan.tensors.has(x)));
  const readInt8 = (x: string) => plan.tensors.has(x) && !graphOutputs.has(x) && g.consumers(x).some((c) => planned.has(c));
  for (const t of tensors) {
    const producer = g.nodes.find((n) => n.outputs.includes(t));
    // The tensor's raw producer when it is a fused Relu's output.
    const producers = producer === undefined ? [] : [producer, ...g.nodes.filter((n) => planned.has(n) && producer.inputs.includes(n.outputs[0]!) && fusedReluOutput(g, n.outputs[0]!) === t)];
    const nodes = [...producers, ...g.consumers(t)].filter((n) => planned.has(n));
    macs.set(t, nodes.reduce((sum, n) => sum + macsOf(n), 0));
    nodesOf.set(t, [...new Set(nodes.map((n) => n.name))]);
    // Dequantized: the producers' inputs that an integer kernel produces (the graph input is float already).
    // Quantized again: the consumers' outputs (after a fused Relu) that integer kernels go on reading.
    const inside = new Set([t, ...producers.map((n) => n.outputs[0]!)]);
    const dequantized = new Set(producers.flatMap((n) => n.inputs).filter((x) => !inside.has(x) && producedInt8.has(x)));
    const requantized = new Set(g.consumers(t).filter((n) => planned.has(n)).map((n) => fusedReluOutput(g, n.outputs[0]!)).filter((x) => !inside.has(x) && readInt8(x)));
    boundaryElements.set(t, [...dequantized, ...requantized].reduce((sum, x) => sum + count(dimsOf(x)), 0));
  }
  const maskName = g.fresh('quantization_mask');
  g.inputs.push({ name: maskName, dims: [tensors.length] });
  tensors.forEach((tensor, i) => {
    const r = ranges.get(tensor);
    if (r === undefined) return;
    const [lo, hi] = calibratedRange(r, options.method);
    const users = g.consumers(tensor);
    const sim = simulateActivation(g, tensor, uint8Params(lo, hi), 8);
    const m = g.fresh(`${tensor}_mask`);
    const delta = g.fresh(`${tensor}_delta`);
    const masked = g.fresh(`${tensor}_masked`);
    const blended = g.fresh(`${tensor}_blended`);
    const at = g.nodes.findIndex((n) => n.outputs.includes(sim)) + 1;
    g.nodes.splice(
      at,
      0,
      { op: 'Gather', inputs: [maskName, g.constant(`${tensor}_mask_index`, [], BigInt64Array.of(BigInt(i)), DataType.INT64)], outputs: [m], name: g.fresh('MaskOf') },
      { op: 'Sub', inputs: [sim, tensor], outputs: [delta], name: g.fresh('RoundingError') },
      { op: 'Mul', inputs: [delta, m], outputs: [masked], name: g.fresh('Masked') },
      { op: 'Add', inputs: [tensor, masked], outputs: [blended], name: g.fresh('Blend') },
    );
    // simulateActivation rewired them to the rounded tensor; they read the blend instead.
    for (const u of users) u.inputs = u.inputs.map((x) => (x === sim ? blended : x));
  });
  return { graph: g, maskName, tensors, exits, macs, nodesOf, boundaryElements };
}

/** A scalar constant `t` of `node` as uint8 + DequantizeLinear (inserted before `node`); its DQ output. */
function quantizedScalar(g: OnnxGraph, t: string, node: OnnxNode): string {
  const k = scalarOf(g, t)!;
  const p = uint8Params(Math.min(0, k), Math.max(0, k));
  const level = Math.min(255, Math.max(0, Math.round(k / p.scale) + p.zeroPoint));
  const dq = g.fresh(`${t}_dq`);
  const qk = g.constant(`${t}_uint8`, [], Uint8Array.of(level), DataType.UINT8);
  const sk = g.constant(`${t}_scale`, [], Float32Array.of(p.scale));
  const zk = g.constant(`${t}_zp`, [], Uint8Array.of(p.zeroPoint), DataType.UINT8);
  g.nodes.splice(g.nodes.indexOf(node), 0, { op: 'DequantizeLinear', inputs: [qk, sk, zk], outputs: [dq], name: g.fresh('DQk') });
  return dq;
}

function activationInputs(g: OnnxGraph, node: OnnxNode): string[] {
  const count = node.op === 'Conv' || node.op === 'Gemm' ? 1 : node.inputs.length;
  return node.inputs.slice(0, count).filter((t) => t !== '' && !g.initializers.has(t));
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
  const { scales, levels, channelOf } = symmetricPerChannel(w.data, w.dims, channelsLast(node), 2 ** (bits - 1) - 1);
  const data = Float32Array.from(levels, (l, i) => l * scales[channelOf(i)]!);
  node.inputs = [node.inputs[0]!, g.constant(`${node.inputs[1]!}_${bits}bit`, w.dims, data), ...node.inputs.slice(2)];
}

/**
 * Whether the node's weight has its output channels on the last axis: a Gemm's B is [in, out], unless transB = 1
 * (PyTorch's exports: [out, in], like a Conv's [O, I, kh, kw]).
 */
function channelsLast(node: OnnxNode): boolean {
  return node.op === 'Gemm' && node.attrs?.transB !== 1;
}

/**
 * Symmetric per-output-channel quantization of a Conv weight [O, I, kh, kw] (channel = axis 0) or a Gemm B
 * [in, out] (channel = axis 1; `gemm` says which): each channel's scale maps its largest |w| to ±qmax.
 */
function symmetricPerChannel(data: Float32Array, dims: number[], gemm: boolean, qmax: number, minScales?: Float64Array) {
  const channels = gemm ? dims[1]! : dims[0]!;
  const perChannel = data.length / channels;
  const channelOf = (i: number) => (gemm ? i % channels : Math.floor(i / perChannel));
  const max = new Float32Array(channels);
  for (let i = 0; i < data.length; i++) max[channelOf(i)] = Math.max(max[channelOf(i)]!, Math.abs(data[i]!));
  const scales = Float64Array.from(max, (m, c) => Math.max(m > 0 ? m / qmax : 1, minScales?.[c] ?? 0));
  const levels = Int32Array.from(data, (v, i) => Math.max(-qmax, Math.min(qmax, Math.round(v / scales[channelOf(i)]!))));
  return { channels, scales, levels, channelOf };
}

/**
 * x → (clip(round(x / s) + z, 0, 2^bits − 1) − z) · s in float ops, over the 8-bit range `p` covers, inserted after
 * x's producer; x's consumers are rewired to it. Returns the rounded tensor.
 */
function simulateActivation(g: OnnxGraph, tensor: string, p: QParams, bits: number): string {
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
  return out;
}

/** Conv weight [O, I, kh, kw] or Gemm B [out, in] with transB (axis 0), Gemm B [in, out] (axis 1) → int8 levels per output channel (stored as int8 or uint8 + 128); bias → int32. */
function quantizeWeights(g: OnnxGraph, node: OnnxNode, inputScale: number | undefined, weightType: IntegerWeightType): void {
  if (inputScale === undefined) return;
  const wName = node.inputs[1]!;
  const w = g.initializers.get(wName);
  if (w === undefined || !(w.data instanceof Float32Array)) return;
  const gemm = channelsLast(node);
  const bName = node.inputs[2];
  const b = bName === undefined ? undefined : g.initializers.get(bName);
  // A bias of one value per output channel becomes int32; any other shape (a Gemm's broadcast C) stays float.
  const bias = b?.data instanceof Float32Array && b.data.length === (gemm ? w.dims[1] : w.dims[0]) ? b.data : undefined;
  // The int32 bias is b / (input scale · weight scale). A layer reading a nearly-zero input (a squeeze-and-excitation
  // FC after a ReLU that is mostly 0: input scale ~1e-4) with small weights and a bias near 2 needs more than 2^31
  // levels: the bias would wrap around. Such a channel's weight scale is raised until its bias fits in 2^30 (room
  // left for the accumulated products); its weights get fewer levels, and its output is the bias anyway.
  const minScales = bias === undefined ? undefined : Float64Array.from(bias, (v) => Math.abs(v) / (inputScale * BIAS_LEVEL_LIMIT));
  const perChannel = symmetricPerChannel(w.data, w.dims, gemm, QMAX, minScales);
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
  let bdq: string | undefined;
  if (b !== undefined && bias !== undefined) {
    const bs = Float32Array.from(scales, (s) => s * inputScale);
    const bq = Int32Array.from(bias, (v, c) => Math.max(-BIAS_LEVEL_LIMIT, Math.min(BIAS_LEVEL_LIMIT, Math.round(v / bs[c]!))));
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
