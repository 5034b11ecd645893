import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { onnx as OnnxNs } from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVisionpipeError } from '../../../src/errors.js';
import { loadModelDescriptor } from '../../../src/models/load-descriptor.js';
import { toHalfBits } from '../../../src/models/optimize/fp16-weights.js';
import { parseTflite, readTfliteFile } from '../../../src/models/tflite/read-tflite.js';
import { integerWeightTypeForThisCpu, tfliteToOnnx } from '../../../src/models/tflite/tflite-to-onnx.js';
import { preprocessSpecOf } from '../../../src/preprocess/preprocess-frame.js';
import { runCli } from '../../helpers/cli.js';
import { preprocessedFrames } from '../../helpers/frames.js';
import { HAS_SHARED, SHARED, SKIP_SHARED_REASON, VTEST } from '../../helpers/shared.js';
import { openTfliteReference } from '../../helpers/tflite-reference.js';
import { bytesOf, toWriterModel, writeTflite, type WModel } from '../../helpers/tflite-writer.js';

const { onnx } = createRequire(import.meta.url)('onnx-proto') as { onnx: typeof OnnxNs };
const DIR = resolve(SHARED, 'models', 'mlperf-tiny-resnet');
const FLOAT = join(DIR, 'pretrainedResnet.tflite');
const INT8 = join(DIR, 'pretrainedResnet_quant.tflite');
const REFERENCE_ONNX = join(DIR, 'pretrainedResnet.onnx');
const DIMS = [1, 32, 32, 3];

const argmax = (v: ArrayLike<number>) => {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (Number(v[i]) > Number(v[best])) best = i;
  return best;
};

/** Every 4th frame of vtest.avi, preprocessed as the mlperf-tiny-resnet descriptor does (area-resized, RGB, 0..255). */
function vtestFrames(): Promise<Float32Array[]> {
  return preprocessedFrames(VTEST, preprocessSpecOf(loadModelDescriptor('mlperf-tiny-resnet')), 4);
}

async function outputsOf(model: Uint8Array | string, frames: Float32Array[], options: ort.InferenceSession.SessionOptions = {}): Promise<Float32Array[]> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
  const out: Float32Array[] = [];
  for (const x of frames) out.push(Float32Array.from((await session.run({ input: new ort.Tensor('float32', x, DIMS) }))['output']!.data as Float32Array));
  await session.release();
  return out;
}

/** What TFLite's converter writes for float16 quantization: fp16 weight buffers, each behind a DEQUANTIZE op. */
function withFloat16Weights(m: WModel): WModel {
  const tensors = [...m.tensors];
  const dequantize: WModel['operators'] = [];
  m.tensors.forEach((t, i) => {
    if (t.type !== 'float32' || t.data === undefined || t.shape.length < 1) return;
    if (!m.operators.some((o) => (o.op === 'CONV_2D' || o.op === 'FULLY_CONNECTED') && o.inputs.slice(1).includes(i))) return;
    const f32 = new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
    tensors.push({ name: `${t.name}_fp16`, shape: t.shape, type: 'float16', data: bytesOf(Uint16Array.from(f32, toHalfBits)) });
    tensors[i] = { name: t.name, shape: t.shape, type: 'float32' };
    dequantize.push({ op: 'DEQUANTIZE', inputs: [tensors.length - 1], outputs: [i] });
  });
  return { ...m, tensors, operators: [...dequantize, ...m.operators] };
}

describe.skipIf(!HAS_SHARED)('TFLite importer on the real MLPerf Tiny ResNet (float, float16, int8) and vtest.avi frames', () => {
  let frames: Float32Array[] = [];
  let reference: Float32Array[] = [];
  let dir = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vp-tflite-'));
    frames = await vtestFrames();
    reference = await outputsOf(REFERENCE_ONNX, frames);
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('pretrainedResnet.tflite → ONNX reproduces the reference pretrainedResnet.onnx within 1e-4 on every frame', async () => {
    expect(frames.length).toBeGreaterThan(190);
    const ours = await outputsOf(tfliteToOnnx(readTfliteFile(FLOAT)).graph.toBytes(), frames);
    let max = 0;
    ours.forEach((y, k) => y.forEach((v, i) => (max = Math.max(max, Math.abs(v - reference[k]![i]!)))));
    expect(max).toBeLessThanOrEqual(1e-4);
  });

  it('a float16-weight export (fp16 buffers + DEQUANTIZE, as TFLite writes it) converts, matches TFLite’s own output on it within 1e-4, and keeps fp32’s top-1 on ≥ 98 % of frames', async () => {
    const fp16 = writeTflite(withFloat16Weights(toWriterModel(readTfliteFile(FLOAT))));
    expect(fp16.byteLength).toBeLessThan(0.6 * readFileSync(FLOAT).byteLength);
    const ours = await outputsOf(tfliteToOnnx(parseTflite(fp16)).graph.toBytes(), frames);
    const tflite = await openTfliteReference(fp16);
    let sameTop1 = 0;
    let maxVsTflite = 0;
    ours.forEach((y, k) => {
      const t = tflite.run(frames[k]!).raw;
      y.forEach((v, i) => (maxVsTflite = Math.max(maxVsTflite, Math.abs(v - Number(t[i])))));
      if (argmax(y) === argmax(reference[k]!)) sameTop1++;
    });
    tflite.close();
    expect(maxVsTflite).toBeLessThanOrEqual(1e-4);
    // float16 weights move near-ties: nearly every answer is fp32's.
    expect(sameTop1 / frames.length).toBeGreaterThanOrEqual(0.98);
  });

  it('pretrainedResnet_quant.tflite runs on integer kernels: onnxruntime’s optimised graph has no float Conv, Gemm, Add or pool', async () => {
    const model = readTfliteFile(INT8);
    const file = join(dir, 'optimized.onnx');
    const session = await ort.InferenceSession.create(tfliteToOnnx(model).graph.toBytes(), { graphOptimizationLevel: 'all', optimizedModelFilePath: file });
    await session.release();
    const ops = onnx.ModelProto.decode(readFileSync(file)).graph!.node!.map((n) => n.opType);
    const count = (op: string) => ops.filter((o) => o === op).length;
    const tfliteCount = (op: string) => model.operators.filter((o) => o.op === op).length;
    expect(count('QLinearConv')).toBe(tfliteCount('CONV_2D'));
    expect(count('QLinearAdd')).toBe(tfliteCount('ADD'));
    expect(count('QGemm')).toBe(tfliteCount('FULLY_CONNECTED'));
    expect(count('QLinearAveragePool')).toBe(tfliteCount('AVERAGE_POOL_2D'));
    expect(count('QLinearSoftmax')).toBe(tfliteCount('SOFTMAX'));
    for (const floatOp of ['Conv', 'FusedConv', 'Gemm', 'Add', 'AveragePool', 'Softmax', 'Relu']) expect(count(floatOp)).toBe(0);
    // One quantization of the input, one dequantization of the output.
    expect(count('QuantizeLinear')).toBeLessThanOrEqual(2);
    expect(count('DequantizeLinear')).toBe(1);
  });

  it('int8: top-1 agrees with fp32 on ≥ 95 % of vtest.avi frames, and follows TFLite’s own int8 answers (same top-1 on ≥ 99 %, ≥ 85 % of output bytes equal)', async () => {
    const ours = await outputsOf(tfliteToOnnx(readTfliteFile(INT8)).graph.toBytes(), frames);
    const tflite = await openTfliteReference(INT8, { scale: 1, zeroPoint: -128 });
    let withFp32 = 0;
    let withTflite = 0;
    let equalBytes = 0;
    ours.forEach((y, k) => {
      const t = tflite.run(frames[k]!).raw;
      if (argmax(y) === argmax(reference[k]!)) withFp32++;
      if (argmax(y) === argmax(t)) withTflite++;
      // The output's quantization: scale 1/256, zero point −128.
      y.forEach((v, i) => (equalBytes += Math.round(v * 256) - 128 === Number(t[i]) ? 1 : 0));
    });
    tflite.close();
    expect(withFp32 / frames.length).toBeGreaterThanOrEqual(0.95);
    expect(withTflite / frames.length).toBeGreaterThanOrEqual(0.99);
    expect(equalBytes / (10 * frames.length)).toBeGreaterThanOrEqual(0.85);
  });

  it(`uint8 weights (value + 128, zero point + 128) are the same numbers as int8 ones: equal outputs with onnxruntime's integer fusions off (this CPU uses ${integerWeightTypeForThisCpu()})`, async () => {
    const model = readTfliteFile(INT8);
    const off = { graphOptimizationLevel: 'disabled' as const };
    const a = await outputsOf(tfliteToOnnx(model, 'a', 'int8').graph.toBytes(), frames.slice(0, 40), off);
    const b = await outputsOf(tfliteToOnnx(model, 'b', 'uint8').graph.toBytes(), frames.slice(0, 40), off);
    expect(b).toEqual(a);
  });

  it('visionpipe convert writes an ONNX file from each .tflite, and run takes the int8 export through a `format: tflite` descriptor', () => {
    for (const file of [FLOAT, INT8]) {
      const out = join(dir, 'converted.onnx');
      const r = runCli(['convert', file, '-o', out]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(onnx.ModelProto.decode(readFileSync(out)).graph!.input![0]!.name).toBe('input');
    }
    const labelsOf = (model: string) => {
      const events = join(dir, `${model}.jsonl`);
      const r = runCli(['run', VTEST, '--model', model, '--events', events, '--max-frames', '30', '--quiet']);
      expect(r.code, r.stderr).toBe(0);
      return readFileSync(events, 'utf8').trimEnd().split('\n').map((l) => (JSON.parse(l) as { classifications: Array<{ label: string }> }).classifications[0]?.label);
    };
    const int8 = labelsOf('mlperf-tiny-resnet-tflite-int8');
    const fp32 = labelsOf('mlperf-tiny-resnet');
    expect(int8).toHaveLength(30);
    expect(int8.filter((l, i) => l === fp32[i]).length).toBeGreaterThanOrEqual(28);
  });

  it('visionpipe optimize on the float .tflite measures the TFLite int8 export (--compare) beside its own variants, in the same run', () => {
    const out = join(dir, 'optimize');
    const r = runCli(['optimize', FLOAT, '--clip', VTEST, '--out', out, '--compare', INT8, '--calibration-frames', '16', '--eval-frames', '60', '--budget', '0.9']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { variants: Array<{ name: string; agreement: number; meanMs: number; sizeBytes: number }> };
    const names = report.variants.map((v) => v.name);
    expect(names).toEqual(expect.arrayContaining(['fp32', 'tflite-pretrainedResnet_quant', 'int8-minmax', 'int8-percentile']));
    const tfliteInt8 = report.variants.find((v) => v.name === 'tflite-pretrainedResnet_quant')!;
    expect(tfliteInt8.agreement).toBeGreaterThanOrEqual(0.9);
    expect(tfliteInt8.meanMs).toBeGreaterThan(0);
    expect(tfliteInt8.sizeBytes).toBeLessThan(0.4 * report.variants[0]!.sizeBytes);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('tflite-pretrainedResnet_quant');
  });

  it('a truncated .tflite is one VP_MODEL_INVALID (CLI: exit 1, nothing written); optimize refuses an int8 model as its starting point and a missing --compare file up front', () => {
    const bytes = readFileSync(FLOAT);
    for (const keep of [0.5, 0.95]) {
      let err: unknown;
      try {
        parseTflite(bytes.subarray(0, Math.floor(bytes.byteLength * keep)), 'cut.tflite');
      } catch (e) {
        err = e;
      }
      expect(isVisionpipeError(err) && err.code).toBe('VP_MODEL_INVALID');
      expect((err as Error).message).toMatch(/cut\.tflite is truncated or damaged: an offset \(\d+\) points past the end/);
    }
    const cut = join(dir, 'cut.tflite');
    writeFileSync(cut, bytes.subarray(0, bytes.byteLength >> 1));
    const out = join(dir, 'cut.onnx');
    const r = runCli(['convert', cut, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/VP_MODEL_INVALID|truncated or damaged/);
    expect(() => readFileSync(out)).toThrow();
    const o = runCli(['optimize', INT8, '--clip', VTEST, '--out', join(dir, 'opt')]);
    expect(o.code).toBe(1);
    expect(o.stderr).toMatch(/already quantized[\s\S]*--compare/);
    // A wrong --compare path fails before any frame is read or any variant written.
    const c = runCli(['optimize', FLOAT, '--clip', VTEST, '--out', join(dir, 'opt2'), '--compare', join(dir, 'missing.tflite')]);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/VP_MODEL_NOT_FOUND: A --compare model file does not exist/);
    expect(() => readFileSync(join(dir, 'opt2', 'pretrainedResnet.fp32.onnx'))).toThrow();
  });
});

if (!HAS_SHARED) describe('TFLite importer on the real MLPerf Tiny ResNet', () => it.skip(SKIP_SHARED_REASON, () => {}));
