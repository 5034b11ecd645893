import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../src/models/keras/synthetic-resnet.js';
import { OnnxGraph } from '../../../src/models/onnx/onnx-graph.js';
import { equalizeCrossLayer } from '../../../src/models/optimize/equalize.js';
import * as ort from 'onnxruntime-node';
import { runFrames } from '../../../src/models/optimize/evaluate-variant.js';
import { loadOptimizeSubject } from '../../../src/models/optimize/optimize-subject.js';
import { HAS_SHARED, VTEST } from '../../helpers/shared.js';
import { clipFrames } from './clip-frames.js';

/** Every output and `extra` tensor of each frame, concatenated per frame. */
async function runTensors(g: OnnxGraph, frames: Float32Array[], dims: number[], extra: string[]): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(g.toBytes(g.opset, extra), { graphOptimizationLevel: 'all' });
  try {
    const out: Float32Array[] = [];
    for (const x of frames) {
      const r = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x, dims) });
      out.push(Float32Array.from(session.outputNames.flatMap((n) => Array.from(r[n]!.data as Float32Array))));
    }
    return out;
  } finally {
    await session.release();
  }
}

/** max over frames and elements of |a − b| / max(1, |a|)^relative. */
function maxDiff(a: Float32Array[], b: Float32Array[], relative = false): number {
  let m = 0;
  a.forEach((x, f) => x.forEach((v, i) => (m = Math.max(m, Math.abs(v - b[f]![i]!) / (relative ? Math.max(1, Math.abs(v)) : 1)))));
  return m;
}

/** Weights whose output channels differ in range by up to 100x, like a folded BatchNorm's. */
function weights(rand: () => number, dims: number[]): Float32Array {
  const per = dims.slice(1).reduce((a, b) => a * b, 1);
  const gains = Array.from({ length: dims[0]! }, () => 10 ** (2 * rand() - 1));
  return Float32Array.from({ length: dims[0]! * per }, (_, i) => (rand() - 0.5) * gains[Math.floor(i / per)]!);
}

/**
 * NHWC input → Transpose → Conv 3→8 → Relu → Transposes (NHWC and back, as the TF.js importer writes them) →
 * depthwise Conv 8 → Relu → Conv 8→6 → Clip(0, 6) → Conv 6→4 → hard-swish → Conv 4→4.
 */
function smallGraph(): OnnxGraph {
  const rand = seededRandom(5);
  const g = new OnnxGraph('cle');
  g.inputs = [{ name: 'x', dims: [1, 8, 8, 3] }];
  g.outputs = [{ name: 'y', dims: [1, 4, 8, 8] }];
  const conv = (x: string, dims: number[], group = 1) =>
    g.add('Conv', [x, g.constant('w', dims, weights(rand, dims)), g.constant('b', [dims[0]!], Float32Array.from({ length: dims[0]! }, () => rand() - 0.5))], {
      kernel_shape: dims.slice(2), pads: dims[2] === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0], group,
    });
  const nchw = g.add('Transpose', ['x'], { perm: [0, 3, 1, 2] });
  const a = g.add('Relu', [conv(nchw, [8, 3, 3, 3])]);
  const back = g.add('Transpose', [g.add('Transpose', [a], { perm: [0, 2, 3, 1] })], { perm: [0, 3, 1, 2] });
  const d = g.add('Relu', [conv(back, [8, 1, 3, 3], 8)]);
  const c = g.clip(conv(d, [6, 8, 1, 1]), 0, 6);
  const h = conv(c, [4, 6, 1, 1]);
  const hs = g.add('Mul', [g.add('Mul', [h, g.clip(g.add('Add', [h, g.constant('three', [], Float32Array.of(3))]), 0, 6)]), g.constant('sixth', [], Float32Array.of(1 / 6))]);
  g.nodes.push({ op: 'Conv', inputs: [hs, g.constant('w', [4, 4, 1, 1], weights(rand, [4, 4, 1, 1]))], outputs: ['y'], name: 'last', attrs: { kernel_shape: [1, 1] } });
  return g;
}

const channelRanges = (g: OnnxGraph, conv: number) => {
  const w = g.initializers.get(g.nodes.filter((n) => n.op === 'Conv')[conv]!.inputs[1]!)!;
  const per = w.data.length / w.dims[0]!;
  return Array.from({ length: w.dims[0]! }, (_, c) => Math.max(...Array.from((w.data as Float32Array).subarray(c * per, (c + 1) * per), Math.abs)));
};

describe('cross-layer equalization', () => {
  it('rescales Conv → Relu → (transposes) → depthwise → Relu → Conv, skips Clip and hard-swish, and keeps the float outputs', async () => {
    const g = smallGraph();
    const { graph: eq, pairs } = equalizeCrossLayer(g);
    // conv1 → depthwise and depthwise → conv3 only: Clip(0, 6) and hard-swish stop it.
    expect(pairs).toBe(2);
    const spread = (r: number[]) => Math.max(...r) / Math.min(...r);
    expect(spread(channelRanges(eq, 1))).toBeLessThan(spread(channelRanges(g, 1)) / 4);
    // The graph it came from is not modified.
    expect(channelRanges(g, 0)).not.toEqual(channelRanges(eq, 0));
    const rand = seededRandom(6);
    const frames = Array.from({ length: 4 }, () => Float32Array.from({ length: 8 * 8 * 3 }, () => rand() * 4 - 1));
    const a = await runFrames(g.toBytes(), frames, [1, 8, 8, 3], 0);
    const b = await runFrames(eq.toBytes(), frames, [1, 8, 8, 3], 0);
    expect(maxDiff(a.outputs, b.outputs)).toBeLessThanOrEqual(1e-4);
  });

  it.skipIf(!HAS_SHARED)('keeps the real centernet detector’s float outputs on vtest.avi frames (needs ../shared)', async () => {
    const subject = await loadOptimizeSubject('centernet');
    const { graph: eq, pairs } = equalizeCrossLayer(subject.graph);
    expect(pairs).toBeGreaterThan(20);
    const frames = await clipFrames(VTEST, subject.spec, [100, 500]);
    // The head's raw maps (its last two Convs: class heatmap logits and box regression) and the decoded detections ([100, 6] rows: box in pixels, score, class).
    const heads = subject.graph.nodes.filter((n) => n.op === 'Conv').slice(-2).map((n) => n.outputs[0]!);
    const a = await runTensors(subject.graph, frames, subject.dims, heads);
    const b = await runTensors(eq, frames, subject.dims, heads);
    expect(a[0]!.some((v) => v > 0)).toBe(true);
    expect(maxDiff(a, b)).toBeLessThanOrEqual(1e-4);
    // Box corners are hundreds of pixels: there 1e-4 is below one float32 step, so relative.
    expect(maxDiff(a, b, true)).toBeLessThanOrEqual(1e-5);
  }, 60_000);
});
