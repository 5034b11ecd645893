import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { onnx as OnnxNs } from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../../src/models/keras/synthetic-resnet.js';
import { OnnxGraph } from '../../../src/models/onnx/onnx-graph.js';
import { computeNodes, prepareForQuantization, quantizeQdq } from '../../../src/models/optimize/quantize-qdq.js';

const { onnx } = createRequire(import.meta.url)('onnx-proto') as { onnx: typeof OnnxNs };
const dir = mkdtempSync(join(tmpdir(), 'visionpipe-hswish-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DIMS = [1, 8, 12, 12];

/**
 * A MobileNetV3 block as TensorFlow's exporters write it: Conv → hard-swish (x·(1/6) and relu6(x + 3), multiplied)
 * → channels-last squeeze-and-excitation (ReduceMean over H, W → Conv → Relu → Conv → hard-sigmoid → Mul) → Conv;
 * then a detector-style decoding tail: sigmoid scores plus a constant, which must stay float.
 */
function mobileNetV3Block(): OnnxGraph {
  const rand = seededRandom(5);
  const g = new OnnxGraph('block');
  const weights = (dims: number[]) => g.constant('w', dims, Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => (rand() - 0.5) * 0.6));
  const bias = (n: number) => g.constant('b', [n], Float32Array.from({ length: n }, () => rand() - 0.5));
  const k = (v: number) => g.constant('k', [], Float32Array.of(v));
  g.inputs = [{ name: 'x', dims: DIMS }];
  const conv1 = g.add('Conv', ['x', weights([8, 8, 3, 3]), bias(8)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  // hard-swish
  const sixth = g.add('Mul', [k(1 / 6), conv1]);
  const relu6 = g.add('Clip', [g.add('Add', [conv1, k(3)]), k(0), k(6)]);
  const hswish = g.add('Mul', [sixth, relu6]);
  // squeeze-and-excitation, channels last as TF writes it
  const nhwc = g.add('Transpose', [hswish], { perm: [0, 2, 3, 1] });
  const mean = g.add('ReduceMean', [nhwc], { axes: [1, 2], keepdims: 1 });
  const squeeze = g.add('Relu', [g.add('Conv', [g.add('Transpose', [mean], { perm: [0, 3, 1, 2] }), weights([4, 8, 1, 1]), bias(4)], { kernel_shape: [1, 1] })]);
  const excite = g.add('Transpose', [g.add('Conv', [squeeze, weights([8, 4, 1, 1]), bias(8)], { kernel_shape: [1, 1] })], { perm: [0, 2, 3, 1] });
  const hsigmoid = g.add('Mul', [g.add('Clip', [g.add('Add', [excite, k(3)]), k(0), k(6)]), k(1 / 6)]);
  const scaled = g.add('Transpose', [g.add('Mul', [hsigmoid, nhwc])], { perm: [0, 3, 1, 2] });
  const conv2 = g.add('Conv', [scaled, weights([4, 8, 1, 1]), bias(4)], { kernel_shape: [1, 1] });
  // decoding: scores (float) shifted by a constant — not inside the quantized span
  const out = g.add('Add', [g.add('Sigmoid', [conv2]), k(0.25)]);
  g.outputs = [{ name: out, dims: [1, 4, 12, 12] }];
  return g;
}

async function run(g: OnnxGraph, x: Float32Array, level: 'disabled' | 'all' = 'disabled'): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(g.toBytes(), { graphOptimizationLevel: level });
  const r = await session.run({ x: new ort.Tensor('float32', x, DIMS) });
  await session.release();
  return r[g.outputs[0]!.name]!.data as Float32Array;
}

describe('hard-swish, hard-sigmoid and squeeze-and-excitation in the integer domain', () => {
  const rand = seededRandom(9);
  const frames = Array.from({ length: 6 }, () => Float32Array.from({ length: DIMS.reduce((a, b) => a * b, 1) }, () => rand() * 4 - 1));

  it('the channels-last ReduceMean becomes GlobalAveragePool with the same numbers in float', async () => {
    const g = mobileNetV3Block();
    const prepared = prepareForQuantization(g);
    expect(prepared.nodes.filter((n) => n.op === 'ReduceMean')).toHaveLength(0);
    expect(prepared.nodes.filter((n) => n.op === 'GlobalAveragePool')).toHaveLength(1);
    const a = await run(g, frames[0]!);
    const b = await run(prepared, frames[0]!);
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!)))).toBeLessThanOrEqual(1e-6);
  });

  it('onnxruntime runs the whole block in int8: no float op between the first Q and the decoding tail', async () => {
    const g = mobileNetV3Block();
    const q = await quantizeQdq(g, { calibration: frames, dims: DIMS, method: 'minmax', weightType: 'int8' });
    // Muls by 1/6 cost nothing: folded into the scale a DequantizeLinear reads the same integers with.
    expect(q.nodes.filter((n) => n.op === 'Mul')).toHaveLength(2);
    const optimized = join(dir, 'block-optimized.onnx');
    const session = await ort.InferenceSession.create(q.toBytes(), { graphOptimizationLevel: 'all', optimizedModelFilePath: optimized });
    await session.release();
    const ops = onnx.ModelProto.decode(readFileSync(optimized)).graph!.node!.map((n) => n.opType!);
    const count = (op: string) => ops.filter((o) => o === op).length;
    expect(count('QLinearConv')).toBe(4);
    expect(count('QLinearMul')).toBe(2); // hard-swish's x/6 · relu6(x+3), and the excitation's scaling
    expect(count('QLinearAdd')).toBe(2); // the two + 3 (their Clip is the output's saturation)
    expect(count('QLinearGlobalAveragePool')).toBe(1);
    for (const op of ['Clip', 'ReduceMean', 'Mul', 'Relu']) expect(count(op), `${op} left in float: ${ops.join(' ')}`).toBe(0);
    // One Q at the input, one DQ into the float tail (Sigmoid, + 0.25); nothing in between.
    expect(count('QuantizeLinear')).toBe(1);
    expect(count('DequantizeLinear')).toBe(1);
    expect(ops.slice(-2)).toEqual(['Sigmoid', 'Add']);
  });

  it('stays close to fp32, and the decoding tail is left unrounded', async () => {
    const g = mobileNetV3Block();
    const q = await quantizeQdq(g, { calibration: frames, dims: DIMS, method: 'minmax', weightType: 'int8' });
    // The tail's Add (sigmoid scores + 0.25) is outside the quantized span: no Q on its inputs or output.
    const tail = q.nodes.at(-1)!;
    expect(tail.op).toBe('Add');
    expect(q.nodes.filter((n) => n.op === 'QuantizeLinear' && (n.inputs[0] === tail.outputs[0] || tail.inputs.includes(n.inputs[0]!)))).toHaveLength(0);
    // The tail's Add is not a compute node, nor are the Muls by 1/6 (folded).
    expect(computeNodes(g).map((n) => n.op)).toEqual(['Conv', 'Add', 'Mul', 'GlobalAveragePool', 'Conv', 'Conv', 'Add', 'Mul', 'Conv']);
    for (const frame of frames.slice(0, 3)) {
      const a = await run(g, frame);
      const b = await run(q, frame, 'all');
      const maxDiff = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
      expect(maxDiff).toBeLessThan(0.05); // sigmoid outputs in (0.25, 1.25)
    }
  });
});

describe('quantized graphs keep what the float graph promised', () => {
  it('a move that is a graph output stays float there, and a one-element constant of rank 4 keeps its broadcast', async () => {
    const rand = seededRandom(2);
    const g = new OnnxGraph('edges');
    g.inputs = [{ name: 'x', dims: DIMS }];
    const conv = g.add('Conv', ['x', g.constant('w', [8, 8, 1, 1], Float32Array.from({ length: 64 }, () => rand() - 0.5))], { kernel_shape: [1, 1] });
    const moved = g.add('Transpose', [conv], { perm: [0, 2, 3, 1] });
    // [1, 1, 1, 1] broadcasts a [1, 8, 12, 12] tensor to rank 4 (no change), a rank-3 one to rank 4.
    const scaled = g.add('Mul', [g.add('Reshape', [conv, g.constant('shape', [3], BigInt64Array.of(1n, 8n, 144n), 7)]), g.constant('k', [1, 1, 1, 1], Float32Array.of(0.5))]);
    g.outputs = [
      { name: moved, dims: [1, 12, 12, 8] },
      { name: scaled, dims: [1, 1, 8, 144] },
    ];
    const frames = Array.from({ length: 3 }, () => Float32Array.from({ length: 1152 }, () => rand() * 2 - 1));
    const q = await quantizeQdq(g, { calibration: frames, dims: DIMS, method: 'minmax' });
    const session = await ort.InferenceSession.create(q.toBytes(), { graphOptimizationLevel: 'all' });
    const r = await session.run({ x: new ort.Tensor('float32', frames[0]!, DIMS) });
    await session.release();
    expect(r[moved]!.dims).toEqual([1, 12, 12, 8]);
    expect(r[scaled]!.dims).toEqual([1, 1, 8, 144]);
  });
});
