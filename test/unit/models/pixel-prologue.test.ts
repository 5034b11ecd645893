import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { onnx as OnnxNs } from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { cv, type Mat } from '../../../src/cv.js';
import { asOnnxDescriptor, asPixelInputDescriptor } from '../../../src/models/convert-model.js';
import type { ModelDescriptor } from '../../../src/models/descriptor-schema.js';
import { loadModelDescriptor } from '../../../src/models/load-descriptor.js';
import { DataType, OnnxGraph } from '../../../src/models/onnx/onnx-graph.js';
import { PIXELS_INPUT, withPixelPrologue } from '../../../src/models/onnx/pixel-prologue.js';
import { inputByteLength, inputDims, preprocessInto, preprocessSpecOf, type PreprocessSpec } from '../../../src/preprocess/preprocess-frame.js';
import { HAS_SHARED, SKIP_SHARED_REASON, VTEST } from '../../helpers/shared.js';

/**
 * The pixel prologue (uint8 BGR in, channel order / scale / mean / std / layout inside the model) against the float
 * path (OpenCV makes the float input) on real frames: the model's outputs must agree within 1e-4.
 */

const dir = mkdtempSync(join(tmpdir(), 'vp-prologue-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function framesOf(count: number, step: number): Promise<Mat[]> {
  const cap = new cv.VideoCapture(VTEST);
  const out: Mat[] = [];
  for (let i = 0; out.length < count; i++) {
    const f = await cap.readAsync();
    if (f.empty) break;
    if (i % step === 0) out.push(f);
    else f.release();
  }
  cap.release();
  return out;
}

async function run(model: string | Uint8Array, spec: PreprocessSpec, inputName: string, frame: Mat): Promise<{ out: Float32Array; bytes: number }> {
  const buffer = new ArrayBuffer(inputByteLength(spec));
  const { bytesCopied } = await preprocessInto(frame, spec, buffer);
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  const data = spec.dtype === 'uint8' ? new Uint8Array(buffer) : new Float32Array(buffer);
  const y = await session.run({ [inputName]: new ort.Tensor(spec.dtype, data, inputDims(spec)) });
  const out = Float32Array.from(y[session.outputNames[0]!]!.data as Float32Array);
  await session.release();
  return { out, bytes: bytesCopied };
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

async function compare(declared: ModelDescriptor, frames: Mat[]) {
  const float = await asOnnxDescriptor(declared, dir);
  const pixels = await asPixelInputDescriptor(float, dir);
  expect(pixels.input).toMatchObject({ name: PIXELS_INPUT, dtype: 'uint8', layout: 'nhwc' });
  let max = 0;
  let bytes = { float: 0, pixels: 0 };
  for (const frame of frames) {
    const a = await run(float.modelPath, preprocessSpecOf(float), float.input.name!, frame);
    const b = await run(pixels.modelPath, preprocessSpecOf(pixels), PIXELS_INPUT, frame);
    max = Math.max(max, maxAbsDiff(a.out, b.out));
    bytes = { float: a.bytes, pixels: b.bytes };
  }
  return { max, bytes };
}

describe.skipIf(!HAS_SHARED)('pixel prologue vs the float path on vtest.avi frames', () => {
  it('the default CenterNet: outputs within 1e-4, and 0.75 MiB copied per frame instead of 3 MiB', async () => {
    const frames = await framesOf(4, 150);
    const { max, bytes } = await compare(loadModelDescriptor('centernet'), frames);
    frames.forEach((f) => f.release());
    expect(max).toBeLessThanOrEqual(1e-4);
    expect(bytes.pixels).toBe(512 * 512 * 3);
    expect(bytes.float).toBe(512 * 512 * 3 * 4);
  });

  it('the MLPerf ResNet (RGB, raw 0..255, area-resized): outputs within 1e-4', async () => {
    const frames = await framesOf(20, 37);
    const { max } = await compare(loadModelDescriptor('mlperf-tiny-resnet'), frames);
    frames.forEach((f) => f.release());
    expect(max).toBeLessThanOrEqual(1e-4);
  });

  it('an NCHW model with per-channel mean / std, BGR input, letterboxed: the prologue transposes and normalises like OpenCV did', async () => {
    // A 1×1 convolution mixing the three channels differently, so any channel-order or layout mistake shows.
    const g = new OnnxGraph('nchw');
    g.inputs.push({ name: 'x', dims: [1, 3, 24, 32] });
    const w = g.constant('w', [2, 3, 1, 1], Float32Array.of(1, -2, 3, 0.5, 4, -1));
    g.nodes.push({ op: 'Conv', inputs: ['x', w], outputs: ['y'], name: 'conv' });
    g.outputs.push({ name: 'y', dims: [1, 2, 24, 32] });
    const floatSpec: PreprocessSpec = { inputWh: [32, 24], layout: 'nchw', dtype: 'float32', resize: 'letterbox', interpolation: 'linear', pixelFormat: 'bgr', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], padValue: 114 };
    const withPrologue = withPixelPrologue(g, 'x', floatSpec);
    expect(withPrologue.inputs[0]).toMatchObject({ name: PIXELS_INPUT, dims: [1, 24, 32, 3], dataType: DataType.UINT8 });
    const pixelSpec: PreprocessSpec = { ...floatSpec, layout: 'nhwc', dtype: 'uint8', scale: 1, mean: [0, 0, 0], std: [1, 1, 1] };
    const frames = await framesOf(3, 100);
    for (const frame of frames) {
      const a = await run(g.toBytes(), floatSpec, 'x', frame);
      const b = await run(withPrologue.toBytes(), pixelSpec, PIXELS_INPUT, frame);
      expect(maxAbsDiff(a.out, b.out)).toBeLessThanOrEqual(1e-4);
      frame.release();
    }
    // And RGB from BGR bytes: the prologue's Gather must reverse them.
    const rgb = { ...floatSpec, pixelFormat: 'rgb' as const };
    const frame = (await framesOf(1, 1))[0]!;
    const a = await run(g.toBytes(), rgb, 'x', frame);
    const b = await run(withPixelPrologue(g, 'x', rgb, true).toBytes(), pixelSpec, PIXELS_INPUT, frame);
    expect(maxAbsDiff(a.out, b.out)).toBeLessThanOrEqual(1e-4);
    // The pipeline's way: OpenCV already made RGB bytes, the prologue only casts and normalises.
    const c = await run(withPixelPrologue(g, 'x', rgb).toBytes(), { ...pixelSpec, pixelFormat: 'rgb' }, PIXELS_INPUT, frame);
    expect(maxAbsDiff(a.out, c.out)).toBeLessThanOrEqual(1e-4);
    frame.release();
  });

  it('a model without 3 input channels keeps its float input (its shape check then names the real shape)', () => {
    const g = new OnnxGraph('gray');
    g.inputs.push({ name: 'x', dims: [1, 1, 8, 8] });
    g.nodes.push({ op: 'Relu', inputs: ['x'], outputs: ['y'], name: 'relu' });
    g.outputs.push({ name: 'y', dims: [1, 1, 8, 8] });
    expect(() => withPixelPrologue(g, 'x', { layout: 'nchw', pixelFormat: 'rgb', scale: 1, mean: [0, 0, 0], std: [1, 1, 1] })).toThrow(/feeds 3 channels; "x" \(nchw\) has 1/);
  });

  it('the prologue model is cached per preprocessing: the same file on a second call, another for another mean', async () => {
    const float = await asOnnxDescriptor(loadModelDescriptor('mlperf-tiny-resnet'), dir);
    const other = await asPixelInputDescriptor({ ...float, preprocess: { ...float.preprocess, mean: [1, 2, 3] } }, dir);
    expect(other.modelPath).not.toBe((await asPixelInputDescriptor(float, dir)).modelPath);
  });

  it('a model with a local function (which the graph writer would drop) is refused, so it keeps its float input', async () => {
    const { onnx } = createRequire(import.meta.url)('onnx-proto') as { onnx: typeof OnnxNs };
    const vi = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [1, 3, 4, 4].map((d) => ({ dimValue: d })) } } } });
    const bytes = onnx.ModelProto.encode(
      onnx.ModelProto.create({
        irVersion: 8,
        opsetImport: [{ domain: '', version: 15 }, { domain: 'local', version: 1 }],
        functions: [{ name: 'MyRelu', domain: 'local', input: ['a'], output: ['b'], node: [{ opType: 'Relu', input: ['a'], output: ['b'] }], opsetImport: [{ domain: '', version: 15 }] }],
        graph: { name: 'g', node: [{ opType: 'MyRelu', domain: 'local', input: ['x'], output: ['y'], name: 'f' }], input: [vi('x')], output: [vi('y')] },
      }),
    ).finish();
    const file = join(dir, 'fn.onnx');
    writeFileSync(file, bytes);
    const base = await asOnnxDescriptor(loadModelDescriptor('mlperf-tiny-resnet'), dir);
    const d: ModelDescriptor = { ...base, name: 'fn', modelPath: file, input: { name: 'x', sizeWh: [4, 4], layout: 'nchw', dtype: 'float32' } };
    await expect(asPixelInputDescriptor(d, dir)).rejects.toThrow(/local functions, sparse or external initializers/);
  });

  it('the prologue model is cached (the same file on a second call)', async () => {
    const float = await asOnnxDescriptor(loadModelDescriptor('mlperf-tiny-resnet'), dir);
    const first = await asPixelInputDescriptor(float, dir);
    const second = await asPixelInputDescriptor(float, dir);
    expect(second.modelPath).toBe(first.modelPath);
    expect(readFileSync(first.modelPath).byteLength).toBeGreaterThan(0);
  });
});

if (!HAS_SHARED) describe('pixel prologue', () => it.skip(SKIP_SHARED_REASON, () => {}));
