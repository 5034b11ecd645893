import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { onnx as OnnxNs } from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { kerasToOnnx } from '../../../src/models/keras/keras-to-onnx.js';
import { readKerasH5 } from '../../../src/models/keras/read-keras-h5.js';
import { seededRandom } from '../../../src/models/keras/synthetic-resnet.js';
import { runFrames, score } from '../../../src/models/optimize/evaluate-variant.js';
import { fp16Weights, toHalfBits } from '../../../src/models/optimize/fp16-weights.js';
import { OnnxGraph } from '../../../src/models/onnx/onnx-graph.js';
import { quantizeQdq } from '../../../src/models/optimize/quantize-qdq.js';
import { runCli } from '../../helpers/cli.js';
import { HAS_SHARED, SHARED, VTEST } from '../../helpers/shared.js';

const { onnx } = createRequire(import.meta.url)('onnx-proto') as { onnx: typeof OnnxNs };
const H5 = join(SHARED, 'models/mlperf-tiny-resnet/pretrainedResnet.h5');
const dir = mkdtempSync(join(tmpdir(), 'visionpipe-quant-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fp16 weight storage', () => {
  it.each([
    [0, 0x0000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [1e-8, 0x0000],
    [0.1, 0x2e66],
    [Infinity, 0x7c00],
  ])('%f → 0x%s', (v, bits) => expect(toHalfBits(v)).toBe(bits));
});

describe('int8 weight storage', () => {
  it('stores the same levels as uint8 (+128, zero point 128) for CPUs without VNNI: same real weights, same outputs', async () => {
    const rand = seededRandom(21);
    const g = new OnnxGraph('w');
    g.inputs = [{ name: 'x', dims: [1, 3, 6, 6] }];
    g.outputs = [{ name: 'y', dims: [1, 4, 6, 6] }];
    const w = g.constant('w', [4, 3, 3, 3], Float32Array.from({ length: 108 }, () => rand() - 0.5));
    g.nodes.push({ op: 'Conv', inputs: ['x', w, g.constant('b', [4], Float32Array.of(0.1, -0.2, 0.3, 0))], outputs: ['y'], name: 'conv', attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } });
    const frames = Array.from({ length: 3 }, () => Float32Array.from({ length: 108 }, () => rand() * 4));
    const base = { calibration: frames, dims: [1, 3, 6, 6], method: 'minmax' as const };
    const signed = await quantizeQdq(g, { ...base, weightType: 'int8' });
    const unsigned = await quantizeQdq(g, { ...base, weightType: 'uint8' });
    const weightsOf = (q: OnnxGraph) => [...q.initializers.values()].find((i) => i.dims.length === 4)!.data as Int8Array | Uint8Array;
    expect(weightsOf(signed)).toBeInstanceOf(Int8Array);
    expect(weightsOf(unsigned)).toBeInstanceOf(Uint8Array);
    expect(Array.from(weightsOf(unsigned), (v) => v - 128)).toEqual(Array.from(weightsOf(signed)));
    // Unoptimised, onnxruntime computes exactly what the Q/DQ pairs say: the two stores are the same numbers.
    const run = async (q: OnnxGraph) => {
      const session = await ort.InferenceSession.create(q.toBytes(), { graphOptimizationLevel: 'disabled' });
      const r = await session.run({ x: new ort.Tensor('float32', frames[0]!, [1, 3, 6, 6]) });
      await session.release();
      return Array.from(r.y!.data as Float32Array);
    };
    expect(await run(unsigned)).toEqual(await run(signed));
  });

  it('keeps a large bias over a nearly-zero input (a squeeze-and-excitation FC) within int32 instead of wrapping it', async () => {
    // CenterNet's SE blocks: Relu output at most 0.02 (input scale 8e-5), weights at most 0.002 (scale 1.7e-5),
    // biases near 2: b / (input scale · weight scale) ≈ 1.4e9 levels, and the int32 bias wrapped around for some
    // channels (their output was off by up to 4; box F1 against fp32 fell from 79 % to 67 %).
    const rand = seededRandom(33);
    const g = new OnnxGraph('se');
    g.inputs = [{ name: 'x', dims: [1, 24, 1, 1] }];
    g.outputs = [{ name: 'y', dims: [1, 8, 1, 1] }];
    const relu = g.add('Relu', ['x']);
    const w = g.constant('w', [8, 24, 1, 1], Float32Array.from({ length: 192 }, () => (rand() - 0.5) * 0.002));
    // Channels 0 and 1 have no large bias: their weights keep all their levels (checked below).
    const b = g.constant('b', [8], Float32Array.from({ length: 8 }, (_, c) => (c === 0 ? 0 : c === 1 ? 1e-3 : 2 + 2 * rand())));
    g.nodes.push({ op: 'Conv', inputs: [relu, w, b], outputs: ['y'], name: 'fc', attrs: { kernel_shape: [1, 1] } });
    const frames = Array.from({ length: 4 }, () => Float32Array.from({ length: 24 }, () => (rand() < 0.7 ? 0 : rand() * 0.01)));
    const q = await quantizeQdq(g, { calibration: frames, dims: [1, 24, 1, 1], method: 'minmax', weightType: 'int8' });
    const run = async (m: OnnxGraph, level: 'disabled' | 'all') => {
      const session = await ort.InferenceSession.create(m.toBytes(), { graphOptimizationLevel: level });
      const r = await session.run({ x: new ort.Tensor('float32', frames[0]!, [1, 24, 1, 1]) });
      await session.release();
      return Array.from(r.y!.data as Float32Array);
    };
    const want = await run(g, 'disabled');
    for (const level of ['disabled', 'all'] as const) {
      const got = await run(q, level);
      got.forEach((v, c) => expect(Math.abs(v - want[c]!), `${level} channel ${c}`).toBeLessThan(0.01));
    }
    const int32 = [...q.initializers.values()].find((i) => i.data instanceof Int32Array && i.dims.length === 1 && i.data.some((v) => v !== 0))!.data as Int32Array;
    expect(Math.max(...Array.from(int32, Math.abs))).toBeLessThanOrEqual(2 ** 30);
    // Only the channels whose bias needed it had their weight scale raised: 0 and 1 keep 127 levels.
    const levels = [...q.initializers.values()].find((i) => i.data instanceof Int8Array && i.dims.length === 4)!.data as Int8Array;
    for (const c of [0, 1]) expect(Math.max(...Array.from(levels.subarray(c * 24, (c + 1) * 24), Math.abs)), `channel ${c}`).toBe(127);
    expect(Math.max(...Array.from(levels.subarray(7 * 24, 8 * 24), Math.abs))).toBeLessThan(127);
  });

  it.each([0, 1])('quantizes a Gemm with transB = %i per output channel (PyTorch writes B as [out, in])', async (transB) => {
    const rand = seededRandom(35 + transB);
    const g = new OnnxGraph('fc');
    g.inputs = [{ name: 'x', dims: [1, 6] }];
    g.outputs = [{ name: 'y', dims: [1, 4] }];
    // Output channels whose weight ranges differ 100-fold: per-channel scales on the wrong axis would round the small ones away.
    const weight = (o: number) => (rand() - 0.5) * (o === 0 ? 0.02 : 2);
    const data = new Float32Array(24);
    for (let o = 0; o < 4; o++) for (let i = 0; i < 6; i++) data[transB === 1 ? o * 6 + i : i * 4 + o] = weight(o);
    const w = g.constant('w', transB === 1 ? [4, 6] : [6, 4], data);
    g.nodes.push({ op: 'Gemm', inputs: ['x', w, g.constant('b', [4], Float32Array.of(0.1, -0.2, 0.3, 0))], outputs: ['y'], name: 'fc', attrs: { transB } });
    const frames = Array.from({ length: 4 }, () => Float32Array.from({ length: 6 }, () => rand() * 2 - 1));
    const q = await quantizeQdq(g, { calibration: frames, dims: [1, 6], method: 'minmax', weightType: 'int8' });
    const run = async (m: OnnxGraph, level: 'disabled' | 'all') => {
      const session = await ort.InferenceSession.create(m.toBytes(), { graphOptimizationLevel: level });
      const r = await session.run({ x: new ort.Tensor('float32', frames[0]!, [1, 6]) });
      await session.release();
      return Array.from(r.y!.data as Float32Array);
    };
    const want = await run(g, 'disabled');
    for (const level of ['disabled', 'all'] as const) {
      const got = await run(q, level);
      // Channel 0 (weights ≤ 0.01) must keep its own fine scale: off by less than 1 % of its value range.
      got.forEach((v, c) => expect(Math.abs(v - want[c]!), `${level} channel ${c}`).toBeLessThan(c === 0 ? 1e-3 : 0.05));
    }
  });

  it('gives a Conv whose output stays float (floatTensors) float weights, even when its input is quantized for another consumer', async () => {
    const rand = seededRandom(34);
    const g = new OnnxGraph('fork');
    g.inputs = [{ name: 'x', dims: [1, 4, 5, 5] }];
    const relu = g.add('Relu', ['x']);
    const conv = (name: string) => {
      const w = g.constant(`w_${name}`, [4, 4, 1, 1], Float32Array.from({ length: 16 }, () => rand() - 0.5));
      g.nodes.push({ op: 'Conv', inputs: [relu, w], outputs: [name], name, attrs: { kernel_shape: [1, 1] } });
      return w;
    };
    conv('a');
    const wb = conv('b');
    const sum = g.add('Add', ['a', 'b']);
    g.outputs = [{ name: sum, dims: [1, 4, 5, 5] }];
    const frames = Array.from({ length: 3 }, () => Float32Array.from({ length: 100 }, () => rand() * 2 - 1));
    const q = await quantizeQdq(g, { calibration: frames, dims: [1, 4, 5, 5], method: 'minmax', floatTensors: new Set(['b']) });
    const a = q.nodes.find((n) => n.name === 'a')!;
    const b = q.nodes.find((n) => n.name === 'b')!;
    expect(q.producer(a.inputs[1]!)?.op).toBe('DequantizeLinear');
    // b reads the same quantized input, but it runs in float: its weights are the original ones.
    expect(b.inputs[1]).toBe(wb);
    expect(q.initializers.get(wb)!.data).toEqual(g.initializers.get(wb)!.data);
  });
});

describe.skipIf(!HAS_SHARED)('int8 QDQ on the MLPerf ResNet (needs ../shared)', () => {
  it('is arranged so onnxruntime runs every convolution and addition as an integer kernel, with the Relus folded away', async () => {
    const { graph } = kerasToOnnx(await readKerasH5(H5));
    const rand = seededRandom(3);
    const calibration = Array.from({ length: 8 }, () => Float32Array.from({ length: 32 * 32 * 3 }, () => Math.round(rand() * 255)));
    const q = await quantizeQdq(graph, { calibration, dims: [1, 32, 32, 3], method: 'minmax' });
    const optimized = join(dir, 'optimized.onnx');
    const session = await ort.InferenceSession.create(q.toBytes(), { graphOptimizationLevel: 'all', optimizedModelFilePath: optimized });
    await session.release();
    const ops = onnx.ModelProto.decode(readFileSync(optimized)).graph!.node!.map((n) => n.opType);
    const count = (op: string) => ops.filter((o) => o === op).length;
    const convs = graph.nodes.filter((n) => n.op === 'Conv').length;
    expect(count('QLinearConv')).toBe(convs);
    expect(count('Conv') + count('FusedConv')).toBe(0);
    expect(count('QLinearAdd')).toBe(graph.nodes.filter((n) => n.op === 'Add').length);
    expect(count('Relu')).toBe(0);
  });

  it('fp16 weights halve the file and agree with fp32 on real frames', async () => {
    const { graph } = kerasToOnnx(await readKerasH5(H5));
    const half = fp16Weights(graph);
    expect(half.toBytes().byteLength).toBeLessThan(graph.toBytes().byteLength * 0.55);
    const rand = seededRandom(4);
    const frames = Array.from({ length: 20 }, () => Float32Array.from({ length: 32 * 32 * 3 }, () => Math.round(rand() * 255)));
    const a = await runFrames(graph.toBytes(), frames, [1, 32, 32, 3]);
    const b = await runFrames(half.toBytes(), frames, [1, 32, 32, 3]);
    expect(score(a.outputs, b.outputs, b.ms, 0).meanAbsProbDiff).toBeLessThan(1e-3);
  });

  it('visionpipe optimize writes the variants, a Markdown + JSON report and a chart, and picks one within the budget', () => {
    const out = join(dir, 'optimize');
    const r = runCli(['optimize', H5, '--clip', VTEST, '--out', out, '--calibration-frames', '16', '--eval-frames', '60', '--budget', '0.9']);
    expect(r.stderr).not.toMatch(/visionpipe: error/);
    expect(r.code).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { picked: string; variants: Array<{ name: string; agreement: number; file: string }> };
    expect(report.variants.map((v) => v.name).slice(0, 5)).toEqual(['fp32', 'opencv-dnn-fp32', 'fp16-weights', 'int8-minmax', 'int8-percentile']);
    // OpenCV DNN runs the same fp32 network: same answers.
    expect(report.variants[1]?.agreement).toBeGreaterThanOrEqual(0.99);
    const picked = report.variants.find((v) => v.name === report.picked);
    expect(picked?.agreement).toBeGreaterThanOrEqual(0.9);
    for (const v of report.variants) expect(existsSync(v.file)).toBe(true);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('| variant | top-1 agreement |');
    expect(readFileSync(join(out, 'chart.png')).subarray(1, 4).toString()).toBe('PNG');
  });
});
