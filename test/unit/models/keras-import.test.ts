import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cv } from '../../../src/cv.js';
import { kerasToOnnx } from '../../../src/models/keras/keras-to-onnx.js';
import { samePads } from '../../../src/models/keras/keras-layer-math.js';
import { readKerasH5, type KerasModel } from '../../../src/models/keras/read-keras-h5.js';
import { writeKeras3H5 } from '../../helpers/keras3-h5.js';
import { HAS_SHARED, SHARED, VTEST } from '../../helpers/shared.js';

const H5 = join(SHARED, 'models/mlperf-tiny-resnet/pretrainedResnet.h5');
const REFERENCE = join(SHARED, 'models/mlperf-tiny-resnet/pretrainedResnet.onnx');
const dir = mkdtempSync(join(tmpdir(), 'visionpipe-keras-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 16 real frames of vtest.avi, spread over the clip, as a [16, 32, 32, 3] RGB 0..255 batch. */
async function realFrames(): Promise<Float32Array> {
  const cap = new cv.VideoCapture(VTEST);
  const out = new Float32Array(16 * 32 * 32 * 3);
  for (let i = 0; i < 16; i++) {
    cap.set(cv.CAP_PROP_POS_FRAMES, i * 49);
    const rgb = (await (await cap.readAsync()).resizeAsync(32, 32)).cvtColor(cv.COLOR_BGR2RGB).convertTo(cv.CV_32FC3);
    const d = rgb.getData();
    out.set(new Float32Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength)), i * 32 * 32 * 3);
  }
  cap.release();
  return out;
}

async function run(model: string | Uint8Array, x: Float32Array): Promise<Float32Array> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  const y = await session.run({ input: new ort.Tensor('float32', x, [x.length / 3072, 32, 32, 3]) });
  await session.release();
  return Float32Array.from(y['output']!.data as Float32Array);
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] ?? NaN))), 0);

describe('TF "same" padding', () => {
  it.each([
    [32, 3, 1, [1, 1, 32]],
    [32, 3, 2, [0, 1, 16]],
    [31, 3, 2, [1, 1, 16]],
    [32, 1, 2, [0, 0, 16]],
    [7, 7, 1, [3, 3, 7]],
  ])('in %i, kernel %i, stride %i → pads/out %j', (n, k, s, expected) => expect(samePads(n, k, s)).toEqual(expected));
});

describe.skipIf(!HAS_SHARED)('Keras .h5 → ONNX (MLPerf Tiny ResNet, needs ../shared)', () => {
  let keras2: KerasModel;
  let frames: Float32Array;
  let reference: Float32Array;
  beforeAll(async () => {
    keras2 = await readKerasH5(H5);
    frames = await realFrames();
    reference = await run(REFERENCE, frames);
  });

  it('imports the Keras 2.4 file and reproduces the reference ONNX on real frames (max |Δ| ≤ 1e-4)', async () => {
    expect(keras2.kerasVersion).toBe('2.4.0');
    const result = kerasToOnnx(keras2);
    expect(result.inputShapeNhwc).toEqual([32, 32, 3]);
    expect(result.folded).toHaveLength(7);
    expect(result.graph.nodes.some((n) => n.op === 'BatchNormalization')).toBe(false);
    const ours = await run(result.graph.toBytes(), frames);
    expect(maxAbsDiff(ours, reference)).toBeLessThanOrEqual(1e-4);
  });

  it('imports the same network saved in the Keras 3 layout', async () => {
    const file = join(dir, 'resnet-keras3.h5');
    await writeKeras3H5(keras2, file);
    const keras3 = await readKerasH5(file);
    expect(keras3.kerasVersion).toBe('3.6.0');
    expect(keras3.layers.map((l) => l.inbound)).toEqual(keras2.layers.map((l) => l.inbound));
    const ours = await run(kerasToOnnx(keras3).graph.toBytes(), frames);
    expect(maxAbsDiff(ours, reference)).toBeLessThanOrEqual(1e-4);
  });

  it('names an unsupported layer and never skips it', () => {
    const broken: KerasModel = { ...keras2, layers: keras2.layers.map((l) => (l.name === 'average_pooling2d' ? { ...l, className: 'LocallyConnected2D' } : l)) };
    expect(() => kerasToOnnx(broken)).toThrow(/layer "average_pooling2d" \(LocallyConnected2D\)/);
  });
});

describe('bad Keras files', () => {
  it('rejects a truncated file with VP_MODEL_INVALID', async () => {
    const file = join(dir, 'truncated.h5');
    writeFileSync(file, Buffer.from('\x89HDF\r\n\x1a\n and then nothing'));
    await expect(readKerasH5(file)).rejects.toMatchObject({ code: 'VP_MODEL_INVALID' });
  });

  it('rejects a missing file with VP_MODEL_NOT_FOUND', async () => {
    await expect(readKerasH5(join(dir, 'none.h5'))).rejects.toMatchObject({ code: 'VP_MODEL_NOT_FOUND' });
  });
});
