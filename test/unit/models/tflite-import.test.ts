import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { parseTflite } from '../../../src/models/tflite/read-tflite.js';
import { tfliteToOnnx } from '../../../src/models/tflite/tflite-to-onnx.js';
import { openTfliteReference } from '../../helpers/tflite-reference.js';
import { bytesOf, writeTflite, type WModel, type WOperator, type WTensor } from '../../helpers/tflite-writer.js';

/**
 * Every op the TFLite importer supports, in small models written with the FlatBuffers builder, each run twice: by
 * TensorFlow Lite's own interpreter (the wasm build of @tensorflow/tfjs-tflite) and by onnxruntime on the converted
 * graph. TFLite's answer is the truth here, not a hand computation.
 */

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

class ModelBuilder {
  readonly tensors: WTensor[] = [];
  readonly operators: WOperator[] = [];
  readonly rand = seeded(7);

  tensor(name: string, shape: number[], extra: Partial<WTensor> = {}): number {
    this.tensors.push({ name, shape, type: 'float32', ...extra });
    return this.tensors.length - 1;
  }
  /** A float constant of random values in [-scale, scale]. */
  weights(name: string, shape: number[], scale = 1): number {
    const n = shape.reduce((a, b) => a * b, 1);
    return this.tensor(name, shape, { data: bytesOf(Float32Array.from({ length: n }, () => (this.rand() * 2 - 1) * scale)) });
  }
  ints(name: string, values: number[], shape = [values.length]): number {
    return this.tensor(name, shape, { type: 'int32', data: bytesOf(Int32Array.from(values)) });
  }
  op(op: string, inputs: number[], outputs: number[], options?: WOperator['options']): void {
    this.operators.push({ op, inputs, outputs, ...(options === undefined ? {} : { options }) });
  }
  model(inputs: number[], outputs: number[]): WModel {
    return { tensors: this.tensors, operators: this.operators, inputs, outputs };
  }
}

/** Runs a written model in TFLite and, converted, in onnxruntime; returns both outputs per input. */
async function runBoth(model: WModel, inputs: Float32Array[], inputQuant?: { scale: number; zeroPoint: number }) {
  const bytes = writeTflite(model);
  const { graph, inputShape } = tfliteToOnnx(parseTflite(bytes, 'test.tflite'), 'test', 'uint8');
  const session = await ort.InferenceSession.create(graph.toBytes());
  const reference = await openTfliteReference(bytes, inputQuant);
  const results: Array<{ tflite: ArrayLike<number>; onnx: ArrayLike<number> }> = [];
  try {
    for (const x of inputs) {
      const y = await session.run({ input: new ort.Tensor('float32', x, inputShape) });
      results.push({ tflite: reference.run(x).raw, onnx: y['output']!.data as ArrayLike<number> });
    }
  } finally {
    reference.close();
    await session.release();
  }
  return { results, graph };
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(Number(a[i]) - Number(b[i])));
  return m;
};

const randomInputs = (n: number, length: number, lo: number, hi: number, seed = 1) => {
  const r = seeded(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length }, () => lo + r() * (hi - lo)));
};

describe('TFLite importer: each op against TFLite’s own interpreter', () => {
  it('a MobileNet-style float block: depthwise (SAME, stride 2, ×2, RELU6), 1×1 conv, HARD_SWISH, broadcast MUL / ADD / SUB, MAX / AVERAGE pools, PAD, CONCATENATION, both resizes, MEAN, FULLY_CONNECTED (RELU), SOFTMAX (β 0.5)', async () => {
    const b = new ModelBuilder();
    const x = b.tensor('x', [1, 8, 8, 4]);
    const dw = b.tensor('dw', [1, 4, 4, 8]);
    b.op('DEPTHWISE_CONV_2D', [x, b.weights('dw_w', [1, 3, 3, 8]), b.weights('dw_b', [8])], [dw], [['i8', 0], ['i32', 2], ['i32', 2], ['i32', 2], ['i8', 3]]);
    const pw = b.tensor('pw', [1, 4, 4, 6]);
    b.op('CONV_2D', [dw, b.weights('pw_w', [6, 1, 1, 8]), b.weights('pw_b', [6])], [pw], [['i8', 1], ['i32', 1], ['i32', 1], ['i8', 0]]);
    const hs = b.tensor('hs', [1, 4, 4, 6]);
    b.op('HARD_SWISH', [pw], [hs]);
    const mul = b.tensor('mul', [1, 4, 4, 6]);
    b.op('MUL', [hs, b.weights('scale', [6])], [mul], [['i8', 0]]);
    const add = b.tensor('add', [1, 4, 4, 6]);
    b.op('ADD', [mul, b.weights('shift', [1, 1, 1, 6])], [add], [['i8', 1]]);
    const sub = b.tensor('sub', [1, 4, 4, 6]);
    b.op('SUB', [add, pw], [sub], [['i8', 0]]);
    const mp = b.tensor('mp', [1, 2, 2, 6]);
    b.op('MAX_POOL_2D', [sub], [mp], [['i8', 0], ['i32', 2], ['i32', 2], ['i32', 2], ['i32', 2]]);
    const pad = b.tensor('pad', [1, 4, 4, 6]);
    b.op('PAD', [mp, b.ints('paddings', [0, 0, 1, 1, 0, 2, 0, 0], [4, 2])], [pad]);
    const ap = b.tensor('ap', [1, 4, 4, 6]);
    b.op('AVERAGE_POOL_2D', [pad], [ap], [['i8', 0], ['i32', 1], ['i32', 1], ['i32', 5], ['i32', 5]]);
    const cat = b.tensor('cat', [1, 4, 4, 12]);
    b.op('CONCATENATION', [ap, pw], [cat], [['i32', 3], ['i8', 0]]);
    const up = b.tensor('up', [1, 7, 9, 12]);
    b.op('RESIZE_BILINEAR', [cat, b.ints('up_size', [7, 9])], [up], [null, null, ['bool', 0], ['bool', 1]]);
    const nn = b.tensor('nn', [1, 14, 18, 12]);
    b.op('RESIZE_NEAREST_NEIGHBOR', [up, b.ints('nn_size', [14, 18])], [nn], [['bool', 0], ['bool', 1]]);
    const mean = b.tensor('mean', [1, 12]);
    b.op('MEAN', [nn, b.ints('axes', [1, 2])], [mean], [['bool', 0]]);
    const fc = b.tensor('fc', [1, 5]);
    b.op('FULLY_CONNECTED', [mean, b.weights('fc_w', [5, 12]), b.weights('fc_b', [5])], [fc], [['i8', 1]]);
    const out = b.tensor('probs', [1, 5]);
    b.op('SOFTMAX', [fc], [out], [['f32', 0.5]]);
    const { results, graph } = await runBoth(b.model([x], [out]), randomInputs(4, 8 * 8 * 4, -3, 3));
    for (const r of results) expect(maxAbsDiff(r.onnx, r.tflite)).toBeLessThan(1e-5);
    // Layouts are converted only where needed: one transpose in (NHWC → NCHW), one back before MEAN's reshape-free head.
    expect(graph.nodes.filter((n) => n.op === 'Transpose').length).toBeLessThanOrEqual(3);
  });

  it('shape ops: dilated conv (RELU_N1_TO_1), TRANSPOSE, strided STRIDED_SLICE, MEAN keep_dims, SQUEEZE, RESHAPE, GATHER, LOGISTIC, TANH, ARG_MAX as a second output', async () => {
    const b = new ModelBuilder();
    const x = b.tensor('x', [1, 4, 6, 3]);
    const conv = b.tensor('conv', [1, 4, 6, 5]);
    b.op('CONV_2D', [x, b.weights('w', [5, 3, 3, 3], 0.5), b.weights('b', [5])], [conv], [['i8', 0], ['i32', 1], ['i32', 1], ['i8', 2], ['i32', 2], ['i32', 2]]);
    const tr = b.tensor('tr', [1, 5, 4, 6]);
    b.op('TRANSPOSE', [conv, b.ints('perm', [0, 3, 1, 2])], [tr]);
    const sl = b.tensor('sl', [1, 2, 4, 3]);
    b.op('STRIDED_SLICE', [tr, b.ints('begin', [0, 1, 0, 1]), b.ints('end', [1, 4, 4, 6]), b.ints('strides', [1, 2, 1, 2])], [sl], [['i32', 0], ['i32', 0], ['i32', 0], ['i32', 0], ['i32', 0]]);
    const flat = b.tensor('flat', [1, 24]);
    b.op('RESHAPE', [sl, b.ints('shape', [1, 24])], [flat], [['ints', [1, 24]]]);
    const g = b.tensor('g', [1, 3]);
    b.op('GATHER', [flat, b.ints('idx', [3, 0, 23])], [g], [['i32', 1]]);
    const sig = b.tensor('sig', [1, 3]);
    b.op('LOGISTIC', [g], [sig]);
    const am = b.tensor('am', [1], { type: 'int32' });
    b.op('ARG_MAX', [flat, b.ints('am_axis', [1])], [am], [['i8', 2]]);
    const mk = b.tensor('mk', [1, 1, 4, 6]);
    b.op('MEAN', [tr, b.ints('m_axes', [1])], [mk], [['bool', 1]]);
    const sq = b.tensor('sq', [1, 4, 6]);
    b.op('SQUEEZE', [mk], [sq], [['ints', [1]]]);
    const th = b.tensor('th', [1, 4, 6]);
    b.op('TANH', [sq], [th]);
    const bytes = writeTflite(b.model([x], [sig, am, th]));
    const { graph, inputShape } = tfliteToOnnx(parseTflite(bytes), 'shapes');
    const session = await ort.InferenceSession.create(graph.toBytes());
    const reference = await openTfliteReference(bytes);
    for (const input of randomInputs(4, 4 * 6 * 3, -2, 2, 5)) {
      const y = await session.run({ input: new ort.Tensor('float32', input, inputShape) });
      const ref = reference.run(input).outputs;
      expect(maxAbsDiff(y['output']!.data as Float32Array, ref[0]!)).toBeLessThan(1e-5);
      expect(Array.from(y['output_1']!.data as Int32Array)).toEqual(Array.from(ref[1]!));
      expect(maxAbsDiff(y['output_2']!.data as Float32Array, ref[2]!)).toBeLessThan(1e-5);
    }
    reference.close();
    await session.release();
  });

  it('a fully int8 model (QUANTIZE in, per-channel conv and depthwise, ADD, MAX_POOL and RESHAPE on int8, FULLY_CONNECTED, SOFTMAX, DEQUANTIZE out) follows TFLite’s integer results to within rounding', async () => {
    const b = new ModelBuilder();
    const r = seeded(11);
    const q = (scale: number, zeroPoint: number) => ({ quant: { scale: [scale], zeroPoint: [zeroPoint] }, type: 'int8' as const });
    const int8w = (name: string, shape: number[], axis: number) => {
      const n = shape.reduce((a, c) => a * c, 1);
      const channels = shape[axis]!;
      return b.tensor(name, shape, {
        type: 'int8',
        data: bytesOf(Int8Array.from({ length: n }, () => Math.round((r() * 2 - 1) * 127))),
        quant: { scale: Array.from({ length: channels }, () => 0.002 + 0.01 * r()), zeroPoint: new Array<number>(channels).fill(0), axis },
      });
    };
    const bias = (name: string, inScale: number, w: number) => {
      const ws = b.tensors[w]!.quant!.scale;
      const scale = ws.map((s) => s * inScale);
      return b.tensor(name, [ws.length], { type: 'int32', data: bytesOf(Int32Array.from(ws, () => Math.round((r() * 2 - 1) * 200))), quant: { scale, zeroPoint: new Array<number>(ws.length).fill(0) } });
    };
    const x = b.tensor('x', [1, 8, 8, 3]);
    const xq = b.tensor('xq', [1, 8, 8, 3], q(1, -128));
    b.op('QUANTIZE', [x], [xq]);
    const w1 = int8w('w1', [8, 3, 3, 3], 0);
    const c1 = b.tensor('c1', [1, 8, 8, 8], q(0.05, -128));
    b.op('CONV_2D', [xq, w1, bias('b1', 1, w1)], [c1], [['i8', 0], ['i32', 1], ['i32', 1], ['i8', 1]]);
    const w2 = int8w('w2', [1, 3, 3, 8], 3);
    const c2 = b.tensor('c2', [1, 8, 8, 8], q(0.02, 3));
    b.op('DEPTHWISE_CONV_2D', [c1, w2, bias('b2', 0.05, w2)], [c2], [['i8', 0], ['i32', 1], ['i32', 1], ['i32', 1], ['i8', 0]]);
    const sum = b.tensor('sum', [1, 8, 8, 8], q(0.06, -128));
    b.op('ADD', [c1, c2], [sum], [['i8', 1]]);
    const mp = b.tensor('mp', [1, 4, 4, 8], q(0.06, -128));
    b.op('MAX_POOL_2D', [sum], [mp], [['i8', 1], ['i32', 2], ['i32', 2], ['i32', 2], ['i32', 2]]);
    const flat = b.tensor('flat', [1, 128], q(0.06, -128));
    b.op('RESHAPE', [mp, b.ints('shape', [1, 128])], [flat], [['ints', [1, 128]]]);
    const w3 = int8w('w3', [10, 128], 0);
    const fc = b.tensor('fc', [1, 10], q(0.1, 0));
    b.op('FULLY_CONNECTED', [flat, w3, bias('b3', 0.06, w3)], [fc], [['i8', 0]]);
    const sm = b.tensor('sm', [1, 10], q(1 / 256, -128));
    b.op('SOFTMAX', [fc], [sm], [['f32', 1]]);
    const out = b.tensor('probs', [1, 10]);
    b.op('DEQUANTIZE', [sm], [out]);
    const { results, graph } = await runBoth(b.model([x], [out]), randomInputs(6, 8 * 8 * 3, 0, 255, 9).map((v) => v.map(Math.round)));
    // Integer results: within 2 steps of 1/256 of TFLite's (its fixed-point requantisation and onnxruntime's float
    // scale round ties differently).
    for (const res of results) expect(maxAbsDiff(res.onnx, res.tflite)).toBeLessThanOrEqual(2 / 256 + 1e-6);
    // On int8 values directly, as TFLite does: no Q/DQ around the max pool and the reshape.
    const ops = graph.nodes.map((n) => n.op);
    expect(ops.filter((o) => o === 'QuantizeLinear').length).toBe(6);
    expect(graph.nodes.find((n) => n.op === 'MaxPool')!.inputs[0]).toMatch(/^q__/);
  });
});

describe('TFLite importer: cases a review found', () => {
  it('a grouped CONV_2D (filter channels < image channels, Keras groups=2) and a STRIDED_SLICE reversing an axis with an end below −dim match TFLite', async () => {
    const b = new ModelBuilder();
    const x = b.tensor('x', [1, 5, 5, 4]);
    const conv = b.tensor('conv', [1, 5, 5, 6]);
    b.op('CONV_2D', [x, b.weights('w', [6, 3, 3, 2]), b.weights('b', [6])], [conv], [['i8', 0], ['i32', 1], ['i32', 1], ['i8', 0]]);
    const rev = b.tensor('rev', [1, 5, 5, 6]);
    b.op('STRIDED_SLICE', [conv, b.ints('begin', [0, 0, -1, 0]), b.ints('end', [1, 5, -7, 6]), b.ints('strides', [1, 1, -1, 1])], [rev], [['i32', 0], ['i32', 0], ['i32', 0], ['i32', 0], ['i32', 0]]);
    const { results } = await runBoth(b.model([x], [rev]), randomInputs(3, 5 * 5 * 4, -1, 1, 3));
    for (const r of results) expect(maxAbsDiff(r.onnx, r.tflite)).toBeLessThan(1e-5);
  });

  it('output.name picks any tensor an operator writes; an unknown name lists the outputs', () => {
    const b = new ModelBuilder();
    const x = b.tensor('x', [1, 2, 2, 3]);
    const relu = b.tensor('first', [1, 2, 2, 3]);
    b.op('RELU', [x], [relu]);
    const tanh = b.tensor('second', [1, 2, 2, 3]);
    b.op('TANH', [relu], [tanh]);
    const m = parseTflite(writeTflite(b.model([x], [relu, tanh])));
    expect(tfliteToOnnx(m, 't', 'uint8', 'second').graph.nodes.at(-1)).toMatchObject({ op: 'Identity', outputs: ['output'] });
    expect(tfliteToOnnx(m, 't', 'uint8', 'second').graph.outputs).toHaveLength(1);
    expect(() => tfliteToOnnx(m, 't', 'uint8', 'third')).toThrow(/computes no tensor named "third"[\s\S]*"first", "second"/);
  });
});

describe('TFLite importer: bad files, one clear error each', () => {
  const tiny = (op: string, version?: number): WModel => {
    const b = new ModelBuilder();
    const x = b.tensor('image', [1, 4, 4, 4]);
    const y = b.tensor('moved_to_depth', [1, 2, 2, 16]);
    b.op(op, [x], [y], op === 'SPACE_TO_DEPTH' ? [['i32', 2]] : undefined);
    return { ...b.model([x], [y]), ...(version === undefined ? {} : { version }) };
  };
  const errorOf = (bytes: Uint8Array) => {
    try {
      tfliteToOnnx(parseTflite(bytes, 'model.tflite'));
    } catch (err) {
      return err as Error & { code?: string };
    }
    throw new Error('no error');
  };

  it('not a FlatBuffer (an ONNX file, a text file, an empty file): VP_MODEL_INVALID naming what is at the identifier bytes', () => {
    const onnxLike = Uint8Array.from([0x08, 0x07, 0x12, 0x0a, 0x76, 0x69, 0x73, 0x69, 0x6f, 0x6e]);
    for (const bytes of [onnxLike, new TextEncoder().encode('<html>not found</html>'), new Uint8Array(0)]) {
      const err = errorOf(bytes);
      expect(err.code).toBe('VP_MODEL_INVALID');
      expect(err.message).toMatch(/model\.tflite is not a TensorFlow Lite model: no "TFL3" FlatBuffer identifier/);
    }
  });

  it('an unknown schema version: VP_MODEL_INVALID with the version found and the one expected', () => {
    const err = errorOf(writeTflite(tiny('RELU', 2)));
    expect(err.code).toBe('VP_MODEL_INVALID');
    expect(err.message).toMatch(/schema version 2[\s\S]*expected version 3/);
  });

  it('an unsupported op: VP_MODEL_UNSUPPORTED naming the op, the operator and the tensor it writes, and the supported list', () => {
    const err = errorOf(writeTflite(tiny('SPACE_TO_DEPTH')));
    expect(err.code).toBe('VP_MODEL_UNSUPPORTED');
    expect(err.message).toMatch(/operator #0 \(SPACE_TO_DEPTH, writing tensor "moved_to_depth"\)[\s\S]*Supported: CONV_2D/);
  });

  it('a constant whose bytes do not fit its shape: VP_MODEL_INVALID with both sizes', () => {
    const b = new ModelBuilder();
    const x = b.tensor('x', [1, 2, 2, 2]);
    const y = b.tensor('y', [1, 2, 2, 3]);
    b.op('CONV_2D', [x, b.tensor('w', [3, 1, 1, 2], { data: bytesOf(new Float32Array(2)) })], [y], [['i8', 1], ['i32', 1], ['i32', 1], ['i8', 0]]);
    const err = errorOf(writeTflite(b.model([x], [y])));
    expect(err.code).toBe('VP_MODEL_INVALID');
    expect(err.message).toMatch(/constant "w" holds 8 bytes, but its shape \[3, 1, 1, 2\] of float32 needs 24/);
  });

  it('a truncated file: VP_MODEL_INVALID at every cut of a small model (nothing is read past the end)', () => {
    const bytes = writeTflite(tiny('RELU'));
    expect(() => tfliteToOnnx(parseTflite(bytes))).not.toThrow();
    for (let keep = 8; keep < bytes.byteLength; keep += 7) {
      const err = errorOf(bytes.subarray(0, keep));
      expect(err.code, `cut at ${keep} of ${bytes.byteLength}`).toBe('VP_MODEL_INVALID');
    }
  });
});
