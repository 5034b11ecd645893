import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../src/models/keras/synthetic-resnet.js';
import { OnnxGraph } from '../../../src/models/onnx/onnx-graph.js';
import { attributeKernels, conversionMsPerElement, profileKernels } from '../../../src/models/optimize/node-times.js';
import { quantizeQdq } from '../../../src/models/optimize/quantize-qdq.js';

const DIMS = [1, 16, 16, 16];

/** Conv 3×3 → Relu → Conv 1×1 → Add (a skip from the input of the first Conv's width). */
function network(): OnnxGraph {
  const rand = seededRandom(5);
  const g = new OnnxGraph('chain');
  g.inputs = [{ name: 'x', dims: DIMS }];
  const w = (dims: number[]) => g.constant('w', dims, Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rand() - 0.5));
  const a = g.add('Conv', ['x', w([16, 16, 3, 3]), w([16])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  const r = g.add('Relu', [a]);
  const b = g.add('Conv', [r, w([16, 16, 1, 1]), w([16])], { kernel_shape: [1, 1] });
  const out = g.add('Add', [b, 'x']);
  g.outputs = [{ name: out, dims: DIMS }];
  return g;
}

const profileDirs = () => readdirSync(tmpdir()).filter((d) => d.startsWith('visionpipe-profile-')).length;

describe('per-node kernel times', () => {
  it('charges kernels to the nodes they came from: NCHWc kernels by output tensor, QDQ fusions by node name, a fused activation to its Conv', () => {
    const g = network();
    const [convA, relu, convB, add] = g.nodes;
    const { msByNode, unattributedMs } = attributeKernels(
      [
        { name: `${relu!.name}_nchwc`, op: 'Conv', ms: 2 },
        { name: `${convB!.outputs[0]}_nchwc`, op: 'Conv', ms: 1 },
        { name: `${convA!.name}_token_302`, op: 'QLinearConv', ms: 0.5 },
        { name: add!.name, op: 'Add', ms: 0.25 },
        { name: 'ReorderOutput_token_7', op: 'ReorderOutput', ms: 0.125 },
      ],
      g,
    );
    expect(Object.fromEntries(msByNode)).toEqual({ [convA!.name]: 2.5, [convB!.name]: 1, [add!.name]: 0.25 });
    expect(unattributedMs).toBe(0.125);
  });

  it('profiles a real float and int8 session: every Conv gets a time in both, and the profile file is removed', async () => {
    const g = network();
    const rand = seededRandom(9);
    const frames = Array.from({ length: 3 }, () => Float32Array.from({ length: 16 * 16 * 16 }, () => rand() * 2 - 1));
    const before = profileDirs();
    const [floatKernels, int8Kernels] = await profileKernels([g.toBytes(), (await quantizeQdq(g, { calibration: frames, dims: DIMS, method: 'minmax' })).toBytes()], frames, DIMS, 2);
    const [float, int8] = [attributeKernels(floatKernels!, g), attributeKernels(int8Kernels!, g)];
    for (const conv of g.nodes.filter((n) => n.op === 'Conv')) {
      expect(float.msByNode.get(conv.name)).toBeGreaterThan(0);
      expect(int8.msByNode.get(conv.name)).toBeGreaterThan(0);
    }
    // The int8 session's Q / DQ at the span's ends belong to no node of the float graph.
    expect(int8.unattributedMs).toBeGreaterThan(0);
    expect(profileDirs()).toBe(before);
  });

  it('measures what a float ↔ uint8 conversion costs per element on this CPU', async () => {
    const ms = await conversionMsPerElement();
    // Far above zero and far below a microsecond an element (a 64×64×64 tensor takes tens to hundreds of µs).
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThan(1e-3);
  });
});
