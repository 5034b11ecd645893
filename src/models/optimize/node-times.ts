import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DataType, OnnxGraph } from '../onnx/onnx-graph.js';

/** One kernel onnxruntime ran, as its profiler names it, and its median time per run. */
export interface KernelTime {
  /** The kernel's node name in onnxruntime's optimised graph (e.g. `conv__5_nchwc`, `conv_node__6_token_302`). */
  name: string;
  op: string;
  ms: number;
}

/**
 * Times every kernel onnxruntime runs for `model` (all optimisations on, as the pipeline runs it) with its
 * profiler: each frame is run `rounds` times, the first round is warm-up, and each kernel's median over the rest
 * is kept. The profile file is written to a private temporary directory and removed.
 */
export async function profileKernels(model: Uint8Array, frames: readonly Float32Array[], dims: number[], rounds = 4): Promise<KernelTime[]> {
  const dir = mkdtempSync(join(tmpdir(), 'visionpipe-profile-'));
  try {
    const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', executionProviders: ['cpu'], enableProfiling: true, profileFilePrefix: join(dir, 'profile') });
    try {
      const inputName = session.inputNames[0]!;
      for (let r = 0; r < rounds; r++) for (const x of frames) await session.run({ [inputName]: new ort.Tensor('float32', x, dims) });
      session.endProfiling();
    } finally {
      await session.release();
    }
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (file === undefined) return [];
    const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Array<{ cat?: string; name?: string; dur?: number; args?: { op_name?: string } }>;
    const byKernel = new Map<string, { op: string; us: number[] }>();
    for (const e of events) {
      if (e.cat !== 'Node' || e.name?.endsWith('_kernel_time') !== true || e.dur === undefined) continue;
      const name = e.name.slice(0, -'_kernel_time'.length);
      const k = byKernel.get(name) ?? { op: e.args?.op_name ?? '?', us: [] };
      k.us.push(e.dur);
      byKernel.set(name, k);
    }
    const warmup = frames.length;
    return [...byKernel].map(([name, { op, us }]) => {
      const timed = (us.length > warmup ? us.slice(warmup) : us).sort((a, b) => a - b);
      return { name, op, ms: timed[timed.length >> 1]! / 1000 };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ACTIVATIONS = new Set(['Relu', 'Clip', 'Sigmoid', 'HardSigmoid', 'LeakyRelu', 'HardSwish', 'Tanh']);

/**
 * Charges each profiled kernel to a node of `graph` (the graph before onnxruntime's fusions), by name: onnxruntime
 * keeps a node's name through its QDQ fusions (QLinearConv `conv_node__6_token_302` is Conv `conv_node__6`) and
 * names its NCHWc float kernels after their output tensor or node (`conv__5_nchwc`). An activation fused into the
 * Conv before it is charged to that Conv (a QLinearConv with a fused Relu carries the Conv's name). Kernels that
 * onnxruntime added (layout reorders, Transposes, Q / DQ) have no node and are left out: `unattributedMs` says how
 * much that is.
 */
export function attributeKernels(kernels: readonly KernelTime[], graph: OnnxGraph): { msByNode: Map<string, number>; unattributedMs: number } {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const byOutput = new Map(graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const msByNode = new Map<string, number>();
  let unattributedMs = 0;
  for (const k of kernels) {
    const base = k.name.replace(/_nchwc$/, '').replace(/_token_\d+$/, '');
    let node = byName.get(base) ?? byOutput.get(base);
    if (node !== undefined && ACTIVATIONS.has(node.op)) {
      const producer = byOutput.get(node.inputs[0]!);
      if (producer?.op === 'Conv' && graph.consumers(producer.outputs[0]!).length === 1) node = producer;
    }
    if (node === undefined) unattributedMs += k.ms;
    else msByNode.set(node.name, (msByNode.get(node.name) ?? 0) + k.ms);
  }
  return { msByNode, unattributedMs };
}

/**
 * What converting one element between float and uint8 costs on this CPU (ms, the mean of QuantizeLinear and
 * DequantizeLinear), timed with the profiler on a feature-map-sized tensor: the price of each float island's edges.
 */
export async function conversionMsPerElement(): Promise<number> {
  const dims = [1, 64, 64, 64];
  const elements = dims.reduce((a, b) => a * b, 1);
  const g = new OnnxGraph('conversion');
  g.inputs = [{ name: 'x', dims }];
  const scale = g.constant('scale', [], Float32Array.of(0.05));
  const zeroPoint = g.constant('zero_point', [], Uint8Array.of(128), DataType.UINT8);
  const q = g.add('QuantizeLinear', ['x', scale, zeroPoint]);
  const y = g.add('DequantizeLinear', [q, scale, zeroPoint]);
  g.outputs = [{ name: y, dims }];
  const x = Float32Array.from({ length: elements }, (_, i) => Math.sin(i));
  const kernels = await profileKernels(g.toBytes(), [x, x, x], dims, 4);
  const ms = kernels.filter((k) => k.op === 'QuantizeLinear' || k.op === 'DequantizeLinear').reduce((sum, k) => sum + k.ms, 0);
  return ms / (2 * elements);
}
