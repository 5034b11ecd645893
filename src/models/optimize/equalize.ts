import type { OnnxGraph, OnnxInitializer, OnnxNode } from '../onnx/onnx-graph.js';
import { cloneGraph } from './quantize-qdq.js';

/** One Conv → (Relu | nothing) → (Transposes) → Conv(s) chain whose shared channels can be rescaled. */
export interface EqualizePair {
  first: OnnxNode;
  /** The Convs reading the first Conv's (activated) output, each through transposes that end in NCHW again. */
  next: OnnxNode[];
}

export interface EqualizeResult {
  graph: OnnxGraph;
  /** Chains rescaled. */
  pairs: number;
}

/**
 * Cross-layer equalization (Nagel et al., "Data-Free Quantization", 2019): for each Conv whose output reaches other
 * Convs through a positively homogeneous activation (Relu, or none), output channel i of the first is divided by
 * s_i and input channel i of the next multiplied by it, with s_i = √(r1_i / r2_i) so both weight ranges become
 * √(r1_i · r2_i) (s_i rounded to a power of two). Relu(x / s) = Relu(x) / s for s > 0, so the float function is unchanged; per-
 * tensor activation ranges and per-channel weight ranges even out, which is what 8-bit rounding needs.
 *
 * Not equalized across: Clip (ReLU6) — ONNX's Clip bounds are scalars, so a per-channel bound would need a float
 * Min that onnxruntime cannot fuse into QLinearConv; hard-swish (x·relu6(x+3)/6), which is not homogeneous; Adds
 * (residuals: both inputs would need the same scaling); grouped Convs other than depthwise. Returns a new graph.
 */
export function equalizeCrossLayer(fp32: OnnxGraph, iterations = 8): EqualizeResult {
  const g = cloneGraph(fp32);
  const pairs = findPairs(g);
  // Rescaled in float64 and rounded to float32 once, so iterating adds no rounding of its own.
  const exact = new Map<string, Float64Array>();
  for (const p of pairs) {
    for (const t of [p.first.inputs[1]!, p.first.inputs[2], ...p.next.map((n) => n.inputs[1]!)]) {
      const init = t === undefined ? undefined : g.initializers.get(t);
      if (init !== undefined && !exact.has(t!)) exact.set(t!, Float64Array.from(init.data as Float32Array));
    }
  }
  for (let it = 0; it < iterations; it++) for (const p of pairs) equalizePair(g, p, exact);
  for (const [t, data] of exact) g.initializers.set(t, { ...g.initializers.get(t)!, data: Float32Array.from(data) });
  return { graph: g, pairs: pairs.length };
}

/** The chains equalization can rescale, in graph order. */
export function findPairs(g: OnnxGraph): EqualizePair[] {
  const pairs: EqualizePair[] = [];
  for (const node of g.nodes) {
    if (node.op !== 'Conv' || weightOf(g, node) === undefined) continue;
    let t = node.outputs[0]!;
    if (g.outputs.some((o) => o.name === t) || (node.inputs[2] !== undefined && g.nodes.filter((n) => n.inputs.includes(node.inputs[2]!)).length !== 1)) continue;
    const users = g.consumers(t);
    if (users.length === 1 && users[0]!.op === 'Relu') t = users[0]!.outputs[0]!;
    else if (users.some((u) => u.op !== 'Transpose' && u.op !== 'Conv')) continue;
    const next = convReaders(g, t, [0, 1, 2, 3]);
    if (next === null || next.length === 0) continue;
    const channels = weightOf(g, node)!.dims[0]!;
    if (!next.every((c) => rescalableInput(g, c, channels))) continue;
    pairs.push({ first: node, next });
  }
  return pairs;
}

/**
 * The Convs that read `t` as their data input, following Transposes; `perm` is where each NCHW axis of the
 * first Conv's output sits now. Null if anything else reads it, or a Conv reads it with the channels moved.
 */
function convReaders(g: OnnxGraph, t: string, perm: number[]): OnnxNode[] | null {
  if (g.outputs.some((o) => o.name === t)) return null;
  const out: OnnxNode[] = [];
  for (const u of g.consumers(t)) {
    if (u.op === 'Conv' && u.inputs[0] === t && !u.inputs.slice(1).includes(t)) {
      if (perm.join() !== '0,1,2,3') return null;
      out.push(u);
    } else if (u.op === 'Transpose' && Array.isArray(u.attrs?.perm)) {
      const p = u.attrs.perm;
      const more = convReaders(g, u.outputs[0]!, p.map((axis) => perm[axis]!));
      if (more === null) return null;
      out.push(...more);
    } else {
      return null;
    }
  }
  return out;
}

/** Whether `conv`'s input channels can be scaled one by one: a plain Conv (group 1) or a depthwise one. */
function rescalableInput(g: OnnxGraph, conv: OnnxNode, channels: number): boolean {
  const w = weightOf(g, conv);
  if (w === undefined) return false;
  const group = typeof conv.attrs?.group === 'number' ? conv.attrs.group : 1;
  if (group === 1) return w.dims[1] === channels;
  return group === channels && w.dims[1] === 1 && w.dims[0] === channels;
}

function weightOf(g: OnnxGraph, conv: OnnxNode): (OnnxInitializer & { data: Float32Array }) | undefined {
  const w = g.initializers.get(conv.inputs[1] ?? '');
  if (w === undefined || !(w.data instanceof Float32Array) || w.dims.length !== 4) return undefined;
  // Shared weights would be rescaled twice.
  if (g.nodes.filter((n) => n.inputs.includes(conv.inputs[1]!)).length !== 1) return undefined;
  return w as OnnxInitializer & { data: Float32Array };
}

function equalizePair(g: OnnxGraph, { first, next }: EqualizePair, exact: Map<string, Float64Array>): void {
  const w1 = { dims: weightOf(g, first)!.dims, data: exact.get(first.inputs[1]!)! };
  const channels = w1.dims[0]!;
  const per1 = w1.data.length / channels;
  const r1 = new Float64Array(channels);
  for (let i = 0; i < w1.data.length; i++) r1[Math.floor(i / per1)] = Math.max(r1[Math.floor(i / per1)]!, Math.abs(w1.data[i]!));
  const r2 = new Float64Array(channels);
  const visit = (conv: OnnxNode, f: (index: number, channel: number) => void) => {
    const w = weightOf(g, conv)!;
    const [o, i, kh, kw] = w.dims as [number, number, number, number];
    const k = kh * kw;
    // Depthwise [C, 1, kh, kw]: channel = output index; plain [O, C, kh, kw]: channel = input index.
    for (let j = 0; j < o * i * k; j++) f(j, i === 1 && o === channels && channels !== 1 ? Math.floor(j / k) : Math.floor(j / k) % i);
  };
  for (const conv of next) {
    const w = exact.get(conv.inputs[1]!)!;
    visit(conv, (j, c) => (r2[c] = Math.max(r2[c]!, Math.abs(w[j]!))));
  }
  // Powers of two: scaling by one is exact in float, so the rescaled graph computes the same numbers (within a
  // factor √2 of the ideal scale, which is as even as 8-bit rounding needs).
  const s = Float64Array.from(r1, (a, c) => (a > 0 && r2[c]! > 0 ? 2 ** Math.round(0.5 * Math.log2(a / r2[c]!)) : 1));
  for (let j = 0; j < w1.data.length; j++) w1.data[j] = w1.data[j]! / s[Math.floor(j / per1)]!;
  const b = exact.get(first.inputs[2] ?? '');
  if (b !== undefined) for (let c = 0; c < channels; c++) b[c] = b[c]! / s[c]!;
  for (const conv of next) {
    const w = exact.get(conv.inputs[1]!)!;
    visit(conv, (j, c) => (w[j] = w[j]! * s[c]!));
  }
}
