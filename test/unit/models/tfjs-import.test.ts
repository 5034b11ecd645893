import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import type { TfAttr, TfConst, TfGraph, TfNode } from '../../../src/models/tfjs/read-tfjs-graph.js';
import { tfjsToOnnx } from '../../../src/models/tfjs/tfjs-to-onnx.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const node = (name: string, op: string, inputs: string[], attr: Record<string, TfAttr> = {}): TfNode => ({ name, op, inputs, attr });
const f32 = (shape: number[], values: number[]): TfConst => ({ dtype: 'float32', shape, data: Float32Array.from(values) });
const i32 = (shape: number[], values: number[]): TfConst => ({ dtype: 'int32', shape, data: Int32Array.from(values) });

async function run(graph: TfGraph, x: Float32Array): Promise<Float32Array> {
  const { graph: g } = tfjsToOnnx(graph);
  const s = await ort.InferenceSession.create(g.toBytes());
  const y = await s.run({ input: new ort.Tensor('float32', x, graph.inputs[0]!.shape) });
  await s.release();
  return Float32Array.from(y['output']!.data as Float32Array);
}

describe('TF.js graph → ONNX ops (against hand-computed results)', () => {
  it('Pad, _FusedConv2D (BiasAdd + Relu) with SAME padding, Mean, _FusedMatMul and Softmax', async () => {
    // 1×2×2×1 image → pad to 4×4 → 1×1 conv (weight 2, bias −1, relu) → mean over H, W → dense (2 outputs) → softmax.
    const graph: TfGraph = {
      inputs: [{ name: 'x', shape: [1, 2, 2, 1] }],
      outputs: ['probs'],
      consts: new Map([
        ['paddings', i32([4, 2], [0, 0, 1, 1, 1, 1, 0, 0])],
        ['w', f32([1, 1, 1, 1], [2])],
        ['b', f32([1], [-1])],
        ['axes', i32([2], [1, 2])],
        ['shape', i32([2], [1, 1])],
        ['dense_w', f32([1, 2], [1, -1])],
        ['dense_b', f32([2], [0, 0])],
      ]),
      nodes: [
        node('x', 'Placeholder', []),
        node('pad', 'Pad', ['x', 'paddings']),
        node('conv', '_FusedConv2D', ['pad', 'w', 'b'], {
          strides: { list: { i: [1, 1, 1, 1] } },
          padding: { s: b64('SAME') },
          fused_ops: { list: { s: [b64('BiasAdd'), b64('Relu')] } },
        }),
        node('mean', 'Mean', ['conv', 'axes'], { keep_dims: { b: false } }),
        node('flat', 'Reshape', ['mean', 'shape']),
        node('dense', '_FusedMatMul', ['flat', 'dense_w', 'dense_b'], { fused_ops: { list: { s: [b64('BiasAdd')] } } }),
        node('probs', 'Softmax', ['dense']),
      ],
    };
    const y = await run(graph, Float32Array.of(1, 2, 3, 4));
    // conv on the zero border gives relu(−1) = 0; inside: 2·[1,2,3,4] − 1 = [1,3,5,7]; mean over 16 = 1.
    const logits = [1, -1];
    const e = logits.map(Math.exp);
    expect(Array.from(y)).toEqual(e.map((v) => expect.closeTo(v / (e[0]! + e[1]!), 5)));
  });

  it('names the node of an unsupported op', () => {
    const graph: TfGraph = {
      inputs: [{ name: 'x', shape: [1, 2, 2, 1] }],
      outputs: ['y'],
      consts: new Map(),
      nodes: [node('x', 'Placeholder', []), node('y', 'Erf', ['x'])],
    };
    expect(() => tfjsToOnnx(graph)).toThrow(/node "y" \(Erf\)/);
  });
});
