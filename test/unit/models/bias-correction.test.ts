import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../src/models/keras/synthetic-resnet.js';
import { OnnxGraph } from '../../../src/models/onnx/onnx-graph.js';
import { channelMeans, correctBias, meanAbsShift } from '../../../src/models/optimize/bias-correction.js';
import { quantizeQdq } from '../../../src/models/optimize/quantize-qdq.js';

/**
 * Conv 3→8 → Relu → depthwise 5×5 Conv whose kernels are one large tap and 24 small ones just above half a step:
 * per-channel int8 rounds every small tap up by the same amount, so the depthwise output's mean moves (the
 * systematic shift bias correction exists for, common in MobileNet depthwise layers).
 */
function smallGraph(): OnnxGraph {
  const rand = seededRandom(9);
  const g = new OnnxGraph('bias');
  g.inputs = [{ name: 'x', dims: [1, 3, 12, 12] }];
  g.outputs = [{ name: 'y', dims: [1, 8, 12, 12] }];
  const w1 = Float32Array.from({ length: 8 * 3 * 9 }, () => rand() - 0.3);
  const a = g.add('Relu', [g.add('Conv', ['x', g.constant('w1', [8, 3, 3, 3], w1), g.constant('b1', [8], new Float32Array(8))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })]);
  const step = 1 / 127;
  const w2 = Float32Array.from({ length: 8 * 25 }, (_, i) => (i % 25 === 12 ? 1 : step * (0.5 + 0.3 * rand())));
  g.nodes.push({ op: 'Conv', inputs: [a, g.constant('w2', [8, 1, 5, 5], w2), g.constant('b2', [8], new Float32Array(8))], outputs: ['y'], name: 'dw', attrs: { kernel_shape: [5, 5], pads: [2, 2, 2, 2], group: 8 } });
  return g;
}

describe('bias correction', () => {
  it('removes most of the mean output shift quantization causes in a layer, on frames it was not fitted on', async () => {
    const g = smallGraph();
    const rand = seededRandom(10);
    const frames = (n: number) => Array.from({ length: n }, () => Float32Array.from({ length: 3 * 12 * 12 }, () => rand() * 2));
    const calibration = frames(8);
    const held = frames(8);
    const dims = [1, 3, 12, 12];
    const quantize = (x: OnnxGraph) => quantizeQdq(x, { calibration, dims, method: 'minmax' });
    const plain = await quantize(g);
    const { quantized, layers } = await correctBias(g, quantize, calibration, dims);
    const fp32Means = await channelMeans(g, held, dims, ['y']);
    const before = meanAbsShift(fp32Means, await channelMeans(plain, held, dims, ['y']));
    const after = meanAbsShift(fp32Means, await channelMeans(quantized, held, dims, ['y']));
    expect(layers).toBe(2);
    expect(before).toBeGreaterThan(1e-3);
    expect(after).toBeLessThan(before / 4);
  });
});
