import { Builder } from 'flatbuffers';
import type { TfliteModel, TfliteOperator, TfliteType } from '../../src/models/tflite/read-tflite.js';

/**
 * Writes TFLite FlatBuffers for tests (with the `flatbuffers` npm Builder, a dev dependency): small models with
 * known ops for the importer's unit tests, files TFLite's own interpreter also loads, and bad files (an unknown
 * schema version, an unsupported op). Field slots follow tensorflow/lite/schema/schema.fbs.
 */

type Field = ['i8' | 'i32' | 'f32' | 'bool', number] | ['ints', number[]];

export interface WTensor {
  name: string;
  shape: number[];
  type: TfliteType;
  data?: Uint8Array;
  quant?: { scale: number[]; zeroPoint: number[]; axis?: number };
}

export interface WOperator {
  op: string;
  inputs: number[];
  outputs: number[];
  /** Option fields in slot order (null leaves a slot at its default). */
  options?: Array<Field | null>;
}

export interface WModel {
  version?: number;
  tensors: WTensor[];
  inputs: number[];
  outputs: number[];
  operators: WOperator[];
}

/** Builtin op codes and, for ops with options, their BuiltinOptions union index and field kinds. */
export const OPS: Record<string, { code: number; optionsType?: number; kinds?: Array<Field[0]> }> = {
  ADD: { code: 0, optionsType: 11, kinds: ['i8'] },
  AVERAGE_POOL_2D: { code: 1, optionsType: 5, kinds: ['i8', 'i32', 'i32', 'i32', 'i32', 'i8'] },
  CONCATENATION: { code: 2, optionsType: 10, kinds: ['i32', 'i8'] },
  CONV_2D: { code: 3, optionsType: 1, kinds: ['i8', 'i32', 'i32', 'i8', 'i32', 'i32'] },
  DEPTHWISE_CONV_2D: { code: 4, optionsType: 2, kinds: ['i8', 'i32', 'i32', 'i32', 'i8', 'i32', 'i32'] },
  DEQUANTIZE: { code: 6 },
  FULLY_CONNECTED: { code: 9, optionsType: 8, kinds: ['i8', 'i8', 'bool'] },
  LOGISTIC: { code: 14 },
  MAX_POOL_2D: { code: 17, optionsType: 5, kinds: ['i8', 'i32', 'i32', 'i32', 'i32', 'i8'] },
  MUL: { code: 18, optionsType: 21, kinds: ['i8'] },
  RELU: { code: 19 },
  RELU_N1_TO_1: { code: 20 },
  RELU6: { code: 21 },
  RESHAPE: { code: 22, optionsType: 17, kinds: ['ints'] },
  RESIZE_BILINEAR: { code: 23, optionsType: 15, kinds: ['i32', 'i32', 'bool', 'bool'] },
  SOFTMAX: { code: 25, optionsType: 9, kinds: ['f32'] },
  SPACE_TO_DEPTH: { code: 26, optionsType: 19, kinds: ['i32'] },
  TANH: { code: 28 },
  PAD: { code: 34 },
  GATHER: { code: 36, optionsType: 23, kinds: ['i32', 'i32'] },
  TRANSPOSE: { code: 39 },
  MEAN: { code: 40, optionsType: 27, kinds: ['bool'] },
  SUB: { code: 41, optionsType: 28, kinds: ['i8'] },
  SQUEEZE: { code: 43, optionsType: 30, kinds: ['ints'] },
  STRIDED_SLICE: { code: 45, optionsType: 32, kinds: ['i32', 'i32', 'i32', 'i32', 'i32', 'bool'] },
  ARG_MAX: { code: 56, optionsType: 40, kinds: ['i8'] },
  RESIZE_NEAREST_NEIGHBOR: { code: 97, optionsType: 74, kinds: ['bool', 'bool'] },
  QUANTIZE: { code: 114 },
  HARD_SWISH: { code: 117 },
};

const TYPE_CODES: Partial<Record<TfliteType, number>> = { float32: 0, float16: 1, int32: 2, uint8: 3, int64: 4, int8: 9 };

export function writeTflite(m: WModel): Uint8Array {
  const b = new Builder(1 << 16);
  const opNames = [...new Set(m.operators.map((o) => o.op))];
  const ints = (v: number[]) => {
    b.startVector(4, v.length, 4);
    for (let i = v.length - 1; i >= 0; i--) b.addInt32(v[i]!);
    return b.endVector();
  };
  const floats = (v: number[]) => {
    b.startVector(4, v.length, 4);
    for (let i = v.length - 1; i >= 0; i--) b.addFloat32(v[i]!);
    return b.endVector();
  };
  const longs = (v: number[]) => {
    b.startVector(8, v.length, 8);
    for (let i = v.length - 1; i >= 0; i--) b.addInt64(BigInt(v[i]!));
    return b.endVector();
  };
  const bytes = (v: Uint8Array) => {
    b.startVector(1, v.length, 16);
    for (let i = v.length - 1; i >= 0; i--) b.addInt8(v[i]!);
    return b.endVector();
  };

  // Buffers: 0 is the empty sentinel; each constant tensor gets its own.
  const bufferOf = new Map<number, number>();
  const bufferTables = [emptyTable(b)];
  m.tensors.forEach((t, i) => {
    if (t.data === undefined) return;
    const data = bytes(t.data);
    b.startObject(1);
    b.addFieldOffset(0, data, 0);
    bufferOf.set(i, bufferTables.length);
    bufferTables.push(b.endObject());
  });

  const tensorTables = m.tensors.map((t, i) => {
    const name = b.createString(t.name);
    const shape = ints(t.shape);
    let quant = 0;
    if (t.quant !== undefined) {
      const scale = floats(t.quant.scale);
      const zp = longs(t.quant.zeroPoint);
      b.startObject(7);
      b.addFieldOffset(2, scale, 0);
      b.addFieldOffset(3, zp, 0);
      b.addFieldInt32(6, t.quant.axis ?? 0, 0);
      quant = b.endObject();
    }
    b.startObject(5);
    b.addFieldOffset(0, shape, 0);
    b.addFieldInt8(1, TYPE_CODES[t.type] ?? 0, 0);
    b.addFieldInt32(2, bufferOf.get(i) ?? 0, 0);
    b.addFieldOffset(3, name, 0);
    if (quant !== 0) b.addFieldOffset(4, quant, 0);
    return b.endObject();
  });

  const opTables = m.operators.map((o) => {
    const spec = OPS[o.op];
    if (spec === undefined) throw new Error(`writer: unknown op ${o.op}`);
    const inputs = ints(o.inputs);
    const outputs = ints(o.outputs);
    let options = 0;
    if (o.options !== undefined && spec.optionsType !== undefined) {
      const vectors = o.options.map((f) => (f !== null && f[0] === 'ints' ? ints(f[1]) : 0));
      b.startObject(o.options.length);
      o.options.forEach((f, slot) => {
        if (f === null) return;
        if (f[0] === 'ints') b.addFieldOffset(slot, vectors[slot]!, 0);
        else if (f[0] === 'i8' || f[0] === 'bool') b.addFieldInt8(slot, Number(f[1]), 0);
        else if (f[0] === 'i32') b.addFieldInt32(slot, f[1], 0);
        else b.addFieldFloat32(slot, f[1], 0);
      });
      options = b.endObject();
    }
    b.startObject(5);
    b.addFieldInt32(0, opNames.indexOf(o.op), 0);
    b.addFieldOffset(1, inputs, 0);
    b.addFieldOffset(2, outputs, 0);
    if (options !== 0) {
      b.addFieldInt8(3, spec.optionsType!, 0);
      b.addFieldOffset(4, options, 0);
    }
    return b.endObject();
  });

  const codes = opNames.map((name) => {
    const code = OPS[name]!.code;
    b.startObject(4);
    b.addFieldInt8(0, Math.min(code, 127), 0);
    b.addFieldInt32(2, 1, 1);
    b.addFieldInt32(3, code, 0);
    return b.endObject();
  });

  const tables = (offsets: number[]) => {
    b.startVector(4, offsets.length, 4);
    for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]!);
    return b.endVector();
  };
  const tensorsVec = tables(tensorTables);
  const inputsVec = ints(m.inputs);
  const outputsVec = ints(m.outputs);
  const opsVec = tables(opTables);
  const sgName = b.createString('main');
  b.startObject(5);
  b.addFieldOffset(0, tensorsVec, 0);
  b.addFieldOffset(1, inputsVec, 0);
  b.addFieldOffset(2, outputsVec, 0);
  b.addFieldOffset(3, opsVec, 0);
  b.addFieldOffset(4, sgName, 0);
  const subgraph = b.endObject();

  const codesVec = tables(codes);
  const subgraphsVec = tables([subgraph]);
  const buffersVec = tables(bufferTables);
  const description = b.createString('visionpipe test model');
  b.startObject(5);
  b.addFieldInt32(0, m.version ?? 3, 0);
  b.addFieldOffset(1, codesVec, 0);
  b.addFieldOffset(2, subgraphsVec, 0);
  b.addFieldOffset(3, description, 0);
  b.addFieldOffset(4, buffersVec, 0);
  b.finish(b.endObject(), 'TFL3');
  return b.asUint8Array().slice();
}

function emptyTable(b: Builder): number {
  b.startObject(0);
  return b.endObject();
}

/** A read model back in the writer's form (options copied by the op's field kinds), to rewrite real files. */
export function toWriterModel(m: TfliteModel): WModel {
  return {
    version: m.version,
    inputs: m.inputs,
    outputs: m.outputs,
    tensors: m.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      type: t.type,
      ...(t.data === null ? {} : { data: t.data }),
      ...(t.quant === null ? {} : { quant: { scale: Array.from(t.quant.scale), zeroPoint: t.quant.zeroPoint, axis: t.quant.axis } }),
    })),
    operators: m.operators.map((o) => ({ op: o.op, inputs: o.inputs, outputs: o.outputs, ...copyOptions(o) })),
  };
}

function copyOptions(o: TfliteOperator): { options?: Array<Field | null> } {
  const kinds = OPS[o.op]?.kinds;
  if (kinds === undefined || o.options === null) return {};
  const opts = o.options;
  return {
    // Absent fields stay absent (their schema default, e.g. a dilation of 1, is not 0).
    options: kinds.map((k, slot): Field | null => {
      if (k === 'ints') return ['ints', opts.ints(slot)];
      if (k === 'i8') return ['i8', opts.int8(slot)];
      if (k === 'bool') return ['bool', opts.bool(slot) ? 1 : 0];
      const v = k === 'f32' ? opts.float(slot, NaN) : opts.int(slot, NaN);
      return Number.isNaN(v) ? null : [k, v];
    }),
  };
}

/** float32 → little-endian bytes; other typed arrays likewise. */
export function bytesOf(a: Float32Array | Int32Array | Int8Array | Uint8Array | Uint16Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}
