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
 * Times every kernel onnxruntime runs for each of `models` (all optimisations on, as the pipeline runs them) with
 * its profiler, side by side: in each of `rounds` rounds every model in turn is opened, run twice untimed, run once
 * per frame and closed (one session at a time, so no other session's idle threads spin beside it, and every model
 * sees the same machine state — one model profiled after the other gave the same two models 47.6 / 24.4 ms in one
 * run and 32.9 / 33.4 ms in the next). Each kernel's median over all timed runs is kept. Profile files go to a
 * private temporary directory, removed afterwards.
 */
export async function profileKernels(models: readonly Uint8Array[], frames: readonly Float32Array[], dims: number[], rounds = 3): Promise<KernelTime[][]> {
  if (frames.length === 0) throw new Error('profileKernels needs at least one frame');
  const dir = mkdtempSync(join(tmpdir(), 'visionpipe-profile-'));
  try {
    const durations = models.map(() => new Map<string, { op: string; us: number[] }>());
    for (let round = 0; round < rounds; round++) {
      for (const [m, model] of models.entries()) {
        const prefix = join(dir, `round${round}-model${m}`);
        const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', executionProviders: ['cpu'], enableProfiling: true, profileFilePrefix: prefix });
        try {
          const inputName = session.inputNames[0]!;
          const run = (x: Float32Array) => session.run({ [inputName]: new ort.Tensor('float32', x, dims) });
          for (let i = 0; i < 2; i++) await run(frames[i % frames.length]!);
          for (const x of frames) await run(x);
          session.endProfiling();
        } finally {
          await session.release();
        }
        // onnxruntime appends `_<timestamp>.json` to the prefix.
        const file = readdirSync(dir).find((f) => f.startsWith(`round${round}-model${m}_`) && f.endsWith('.json'));
        if (file === undefined) throw new Error(`onnxruntime wrote no profile for model ${m} in ${dir}`);
        const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Array<{ cat?: string; name?: string; dur?: number; args?: { op_name?: string } }>;
        const seen = new Map<string, number>();
        for (const e of events) {
          if (e.cat !== 'Node' || e.name?.endsWith('_kernel_time') !== true || e.dur === undefined) continue;
          const name = e.name.slice(0, -'_kernel_time'.length);
          // The two warm-up runs come first.
          const n = (seen.get(name) ?? 0) + 1;
          seen.set(name, n);
          if (n <= 2) continue;
          const k = durations[m]!.get(name) ?? { op: e.args?.op_name ?? '?', us: [] };
          k.us.push(e.dur);
          durations[m]!.set(name, k);
        }
      }
    }
    return durations.map((byKernel) =>
      [...byKernel].map(([name, { op, us }]) => {
        const sorted = [...us].sort((a, b) => a - b);
        return { name, op, ms: sorted[sorted.length >> 1]! / 1000 };
      }),
    );
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
  const kernels = (await profileKernels([g.toBytes()], [x, x, x], dims))[0]!;
  const ms = kernels.filter((k) => k.op === 'QuantizeLinear' || k.op === 'DequantizeLinear').reduce((sum, k) => sum + k.ms, 0);
  return ms / (2 * elements);
}
