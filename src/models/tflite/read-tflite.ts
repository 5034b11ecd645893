import { readFileSync } from 'node:fs';
import { VisionpipeError } from '../../errors.js';

/**
 * A TensorFlow Lite model file, read into plain objects.
 *
 * The file is a FlatBuffer with the TFLite schema (tensorflow/lite/schema/schema.fbs, file identifier "TFL3"). It is
 * read here by a small hand-written reader rather than the `flatbuffers` npm runtime: that runtime does not verify a
 * buffer (an offset past the end reads as zeros), so a truncated or foreign file would turn into a silently wrong
 * model. Every read below is bounds-checked and a bad offset is one VP_MODEL_INVALID error. Only the fields the
 * importer needs are read; field slots are the schema's declaration order (a union takes two: type, then value).
 */

/** TFLite's TensorType enum, by value. */
const TENSOR_TYPES = ['float32', 'float16', 'int32', 'uint8', 'int64', 'string', 'bool', 'int16', 'complex64', 'int8', 'float64', 'complex128', 'uint64', 'resource', 'variant', 'uint32', 'uint16', 'int4'] as const;
export type TfliteType = (typeof TENSOR_TYPES)[number];

const ELEMENT_BYTES: Partial<Record<TfliteType, number>> = { float32: 4, float16: 2, int32: 4, uint8: 1, int64: 8, bool: 1, int16: 2, int8: 1, float64: 8, uint32: 4, uint16: 2, uint64: 8 };

/** The schema version this reader knows (Model.version; "TFL3" files carry 3). */
export const TFLITE_SCHEMA_VERSION = 3;

export interface TfliteQuantization {
  /** One scale per tensor, or per channel along `axis`. */
  scale: Float32Array;
  zeroPoint: number[];
  axis: number;
}

export interface TfliteTensor {
  index: number;
  name: string;
  shape: number[];
  type: TfliteType;
  /** The constant's bytes (a view into the file), or null for activations. */
  data: Uint8Array | null;
  /** Null when the tensor is not quantized. */
  quant: TfliteQuantization | null;
}

/** A table in the file whose fields are read on demand (the op options are interpreted by the importer). */
export interface TfliteOptions {
  int(slot: number, fallback?: number): number;
  /** A `byte` / enum field (padding, fused activation, tensor type). */
  int8(slot: number, fallback?: number): number;
  bool(slot: number): boolean;
  float(slot: number, fallback?: number): number;
  ints(slot: number): number[];
}

export interface TfliteOperator {
  index: number;
  /** The builtin op's schema name (CONV_2D …), or CUSTOM:<code>. */
  op: string;
  version: number;
  /** Tensor indices; -1 = an omitted optional input. */
  inputs: number[];
  outputs: number[];
  options: TfliteOptions | null;
}

export interface TfliteModel {
  version: number;
  description: string;
  subgraphs: number;
  tensors: TfliteTensor[];
  inputs: number[];
  outputs: number[];
  operators: TfliteOperator[];
}

/** Builtin operator names by code (schema.fbs, BuiltinOperator); codes past the list print as BUILTIN_<n>. */
const OP_NAMES = (
  'ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE EMBEDDING_LOOKUP FLOOR ' +
  'FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION ' +
  'LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1 RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH ' +
  'CONCAT_EMBEDDINGS SKIP_GRAM CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER ' +
  'BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE ' +
  'BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM ' +
  'ARG_MAX MINIMUM LESS NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN TRANSPOSE_CONV SPARSE_TO_DENSE ' +
  'TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW ARG_MIN FAKE_QUANT REDUCE_PROD REDUCE_MAX PACK ' +
  'LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD ' +
  'RANGE RESIZE_NEAREST_NEIGHBOR LEAKY_RELU SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N ' +
  'GATHER_ND COS WHERE RANK ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE ' +
  'NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM BATCH_MATMUL ' +
  'PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D IMAG REAL COMPLEX_ABS HASHTABLE ' +
  'HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ' +
  'ASSIGN_VARIABLE BROADCAST_ARGS RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL GELU ' +
  'DYNAMIC_UPDATE_SLICE RELU_0_TO_1'
).split(' ');

/** Reads and parses a .tflite file; every problem with the file is a VP_MODEL_INVALID naming it. */
export function readTfliteFile(path: string): TfliteModel {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (cause) {
    throw new VisionpipeError('VP_MODEL_NOT_FOUND', 'Cannot read the TFLite model file', { value: path, cause, hint: 'Check the path of the .tflite file.' });
  }
  return parseTflite(bytes, path);
}

export function parseTflite(bytes: Uint8Array, source = '(buffer)'): TfliteModel {
  if (bytes.byteLength < 8 || String.fromCharCode(...bytes.subarray(4, 8)) !== 'TFL3') {
    throw new VisionpipeError('VP_MODEL_INVALID', `${source} is not a TensorFlow Lite model: no "TFL3" FlatBuffer identifier at byte 4`, {
      value: bytes.byteLength < 8 ? `${bytes.byteLength} bytes` : String.fromCharCode(...bytes.subarray(4, 8)).replace(/[^\x20-\x7e]/g, '?'),
      hint: 'Give a .tflite file written by the TensorFlow Lite converter (check the download is complete and is not an HTML page or a zip).',
    });
  }
  const r = new Reader(bytes, source);
  try {
    return readModel(r);
  } catch (err) {
    if (err instanceof VisionpipeError) throw err;
    throw new VisionpipeError('VP_MODEL_INVALID', `${source} is truncated or damaged: ${err instanceof Error ? err.message : String(err)}`, {
      value: `${bytes.byteLength} bytes`,
      hint: 'Download or export the .tflite file again; its FlatBuffer points past its end.',
    });
  }
}

function readModel(r: Reader): TfliteModel {
  const model = r.root();
  const version = model.uint(0, 0);
  if (version !== TFLITE_SCHEMA_VERSION) {
    throw new VisionpipeError('VP_MODEL_INVALID', `${r.source} uses TFLite schema version ${version}, which this importer does not read`, {
      value: version,
      expected: `version ${TFLITE_SCHEMA_VERSION}`,
      hint: 'Re-export the model with a current TensorFlow Lite converter (tf.lite.TFLiteConverter).',
    });
  }
  const codes = model.tables(1).map((c) => {
    const deprecated = c.int8(0, 0);
    const code = Math.max(deprecated, c.int(3, 0));
    const custom = c.string(1);
    return { name: code === 32 ? `CUSTOM:${custom ?? '?'}` : (OP_NAMES[code] ?? `BUILTIN_${code}`), version: c.int(2, 1) };
  });
  const buffers = model.tables(4);
  const subgraphs = model.tables(2);
  const main = subgraphs[0];
  if (main === undefined) throw new VisionpipeError('VP_MODEL_INVALID', `${r.source} has no subgraph`, { hint: 'Re-export the model.' });
  const tensors = main.tables(0).map((t, index): TfliteTensor => {
    const typeCode = t.int8(1, 0);
    const type = TENSOR_TYPES[typeCode];
    if (type === undefined) throw new VisionpipeError('VP_MODEL_INVALID', `${r.source}: tensor ${index} has an unknown type ${typeCode}`, { value: typeCode });
    const bufferIndex = t.uint(2, 0);
    const buffer = bufferIndex === 0 ? undefined : buffers[bufferIndex];
    if (bufferIndex !== 0 && buffer === undefined) throw new RangeError(`tensor ${index} names buffer ${bufferIndex} of ${buffers.length}`);
    let data = buffer?.bytes(0) ?? null;
    if (buffer !== undefined && data === null && buffer.long(1) > 1) data = r.slice(buffer.long(1), buffer.long(2));
    const name = t.string(3) ?? `tensor_${index}`;
    if (t.table(6) !== null) throw new VisionpipeError('VP_MODEL_UNSUPPORTED', `${r.source}: tensor "${name}" is stored sparse, which the importer does not read`, { value: name, hint: 'Export the model without sparsity (TFLite densifies it at load; convert a dense export).' });
    const shape = t.ints(0);
    const size = ELEMENT_BYTES[type];
    if (data !== null && data.byteLength > 0 && size !== undefined && data.byteLength !== size * shape.reduce((a, d) => a * d, 1)) {
      throw new VisionpipeError('VP_MODEL_INVALID', `${r.source}: constant "${name}" holds ${data.byteLength} bytes, but its shape [${shape.join(', ')}] of ${type} needs ${size * shape.reduce((a, d) => a * d, 1)}`, {
        value: data.byteLength,
        hint: 'The file is damaged or was written by a broken tool: export it again.',
      });
    }
    const q = t.table(4);
    const scale = q?.floats(2) ?? new Float32Array(0);
    const quant = q !== null && scale.length > 0 ? { scale, zeroPoint: q.longs(3), axis: q.int(6, 0) } : null;
    return { index, name, shape, type, data: data !== null && data.byteLength > 0 ? data : null, quant };
  });
  const operators = main.tables(3).map((o, index): TfliteOperator => {
    const codeIndex = o.uint(0, 0);
    const code = codes[codeIndex];
    if (code === undefined) throw new RangeError(`operator ${index} names op code ${codeIndex} of ${codes.length}`);
    const inputs = o.ints(1);
    const outputs = o.ints(2);
    if (outputs.length === 0) throw new VisionpipeError('VP_MODEL_INVALID', `${r.source}: operator #${index} (${code.name}) writes no tensor`, { hint: 'The file is damaged: export it again.' });
    for (const t of [...inputs, ...outputs]) if (t >= tensors.length || t < -1) throw new RangeError(`operator ${index} names tensor ${t} of ${tensors.length}`);
    return { index, op: code.name, version: code.version, inputs, outputs, options: o.table(4) };
  });
  return { version, description: model.string(3) ?? '', subgraphs: subgraphs.length, tensors, inputs: main.ints(1), outputs: main.ints(2), operators };
}

class Reader {
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly source: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private check(offset: number, size: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + size > this.bytes.byteLength) {
      throw new RangeError(`an offset (${offset}) points past the end of the ${this.bytes.byteLength}-byte file`);
    }
  }

  u8(o: number): number {
    this.check(o, 1);
    return this.view.getUint8(o);
  }
  i8(o: number): number {
    this.check(o, 1);
    return this.view.getInt8(o);
  }
  u16(o: number): number {
    this.check(o, 2);
    return this.view.getUint16(o, true);
  }
  i32(o: number): number {
    this.check(o, 4);
    return this.view.getInt32(o, true);
  }
  u32(o: number): number {
    this.check(o, 4);
    return this.view.getUint32(o, true);
  }
  i64(o: number): number {
    this.check(o, 8);
    return Number(this.view.getBigInt64(o, true));
  }
  f32(o: number): number {
    this.check(o, 4);
    return this.view.getFloat32(o, true);
  }

  slice(offset: number, size: number): Uint8Array {
    this.check(offset, size);
    return this.bytes.subarray(offset, offset + size);
  }

  root(): Table {
    return new Table(this, this.u32(0));
  }
}

/** One FlatBuffer table: a position and its vtable; absent fields read as their schema default. */
class Table implements TfliteOptions {
  private readonly vtable: number;
  private readonly vtableSize: number;

  constructor(
    private readonly r: Reader,
    private readonly pos: number,
  ) {
    this.vtable = pos - r.i32(pos);
    this.vtableSize = r.u16(this.vtable);
  }

  /** Absolute offset of field `slot`, or 0 when absent. */
  private field(slot: number): number {
    const at = 4 + 2 * slot;
    if (at + 2 > this.vtableSize) return 0;
    const rel = this.r.u16(this.vtable + at);
    return rel === 0 ? 0 : this.pos + rel;
  }

  int(slot: number, fallback = 0): number {
    const o = this.field(slot);
    return o === 0 ? fallback : this.r.i32(o);
  }
  uint(slot: number, fallback = 0): number {
    const o = this.field(slot);
    return o === 0 ? fallback : this.r.u32(o);
  }
  int8(slot: number, fallback = 0): number {
    const o = this.field(slot);
    return o === 0 ? fallback : this.r.i8(o);
  }
  bool(slot: number): boolean {
    const o = this.field(slot);
    return o !== 0 && this.r.u8(o) !== 0;
  }
  float(slot: number, fallback = 0): number {
    const o = this.field(slot);
    return o === 0 ? fallback : this.r.f32(o);
  }
  long(slot: number, fallback = 0): number {
    const o = this.field(slot);
    return o === 0 ? fallback : this.r.i64(o);
  }

  private indirect(slot: number): number {
    const o = this.field(slot);
    return o === 0 ? 0 : o + this.r.u32(o);
  }

  table(slot: number): Table | null {
    const o = this.indirect(slot);
    return o === 0 ? null : new Table(this.r, o);
  }

  /** A vector's first element offset and length. */
  private vector(slot: number, elementSize: number): { start: number; length: number } {
    const o = this.indirect(slot);
    if (o === 0) return { start: 0, length: 0 };
    const length = this.r.u32(o);
    this.r.slice(o + 4, length * elementSize);
    return { start: o + 4, length };
  }

  ints(slot: number): number[] {
    const { start, length } = this.vector(slot, 4);
    return Array.from({ length }, (_, i) => this.r.i32(start + 4 * i));
  }
  longs(slot: number): number[] {
    const { start, length } = this.vector(slot, 8);
    return Array.from({ length }, (_, i) => this.r.i64(start + 8 * i));
  }
  floats(slot: number): Float32Array {
    const { start, length } = this.vector(slot, 4);
    return Float32Array.from({ length }, (_, i) => this.r.f32(start + 4 * i));
  }
  bytes(slot: number): Uint8Array | null {
    const { start, length } = this.vector(slot, 1);
    return start === 0 ? null : this.r.slice(start, length);
  }
  tables(slot: number): Table[] {
    const { start, length } = this.vector(slot, 4);
    return Array.from({ length }, (_, i) => {
      const at = start + 4 * i;
      return new Table(this.r, at + this.r.u32(at));
    });
  }
  string(slot: number): string | null {
    const o = this.indirect(slot);
    if (o === 0) return null;
    return new TextDecoder().decode(this.r.slice(o + 4, this.r.u32(o)));
  }
}
