import { createRequire } from 'node:module';
import type { onnx as OnnxNs } from 'onnx-proto';
import { VisionpipeError } from '../../errors.js';

const { onnx } = createRequire(import.meta.url)('onnx-proto') as { onnx: typeof OnnxNs };

/** A number is an INT attribute; floats are written `{ f: 0.5 }` so 1.0 cannot turn into an integer. */
export type AttrValue = number | { f: number } | string | number[] | { floats: number[] } | { graph: OnnxNs.IGraphProto } | OnnxNs.ITensorProto;

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attrs?: Record<string, AttrValue>;
  /** ONNX domain; '' = the default. */
  domain?: string;
}

export interface OnnxInitializer {
  name: string;
  dims: number[];
  data: Float32Array | Int32Array | BigInt64Array | Int8Array | Uint8Array | Uint16Array;
  /** ONNX TensorProto.DataType. */
  dataType: number;
}

export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, FLOAT16: 10 } as const;

export interface ValueInfo {
  name: string;
  /** null = dynamic (e.g. the batch). */
  dims: Array<number | null>;
  dataType?: number;
}

/**
 * A small in-memory ONNX graph: the importers build it, the optimisers rewrite it, `toBytes` serialises it.
 * Names are unique; `fresh()` makes new ones.
 */
export class OnnxGraph {
  nodes: OnnxNode[] = [];
  initializers = new Map<string, OnnxInitializer>();
  inputs: ValueInfo[] = [];
  outputs: ValueInfo[] = [];
  /** The default opset `toBytes` writes (a graph read from a file keeps the file's). */
  opset = 13;
  private counter = 0;

  constructor(readonly name: string) {}

  /** Continues another graph's name counter (for copies), so fresh names never collide. */
  adoptCounter(other: OnnxGraph): void {
    this.counter = Math.max(this.counter, other.counter);
  }

  /** Moves the name counter past every `<base>__<n>` name in use, so fresh() cannot repeat a name a file brought. */
  avoidNames(names: Iterable<string>): void {
    for (const name of names) {
      const m = /__(\d+)$/.exec(name);
      if (m !== null) this.counter = Math.max(this.counter, Number(m[1]) + 1);
    }
  }

  fresh(base: string): string {
    return `${base}__${this.counter++}`;
  }

  add(op: string, inputs: string[], attrs?: Record<string, AttrValue>, base = op.toLowerCase()): string {
    const out = this.fresh(base);
    this.nodes.push({ op, inputs, outputs: [out], name: this.fresh(`${base}_node`), ...(attrs === undefined ? {} : { attrs }) });
    return out;
  }

  /** Clip(input, min, max) with its bounds as scalar initializers. */
  clip(input: string, min: number, max: number, base = 'clip'): string {
    const lo = this.constant(`${base}_min`, [], Float32Array.of(min));
    const hi = this.constant(`${base}_max`, [], Float32Array.of(max));
    return this.add('Clip', [input, lo, hi], undefined, base);
  }

  constant(base: string, dims: number[], data: OnnxInitializer['data'], dataType: number = DataType.FLOAT): string {
    const name = this.fresh(base);
    this.initializers.set(name, { name, dims, data, dataType });
    return name;
  }

  /** Drops initializers no node reads (e.g. constants that were only needed as attribute values). */
  pruneInitializers(): void {
    const used = new Set(this.nodes.flatMap((n) => n.inputs));
    for (const name of [...this.initializers.keys()]) if (!used.has(name)) this.initializers.delete(name);
  }

  /** Nodes that read `tensor`. */
  consumers(tensor: string): OnnxNode[] {
    return this.nodes.filter((n) => n.inputs.includes(tensor));
  }

  producer(tensor: string): OnnxNode | undefined {
    return this.nodes.find((n) => n.outputs.includes(tensor));
  }

  /** Serialises the model; `extraOutputs` exposes intermediate tensors (for calibration) without changing the graph. */
  toBytes(opset = this.opset, extraOutputs: readonly string[] = []): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 7,
      producerName: 'visionpipe',
      opsetImport: [{ domain: '', version: opset }],
      graph: this.toGraphProto(extraOutputs),
    });
    return onnx.ModelProto.encode(model).finish();
  }

  /** The graph alone: what toBytes wraps in a model, and what a Scan / Loop / If node carries as its body. */
  toGraphProto(extraOutputs: readonly string[] = []): OnnxNs.IGraphProto {
    const outputs = [...this.outputs, ...extraOutputs.filter((t) => !this.outputs.some((o) => o.name === t)).map((name) => ({ name, dims: [] }))];
    return {
      name: this.name,
      node: this.nodes.map((n) => ({
        opType: n.op,
        input: n.inputs,
        output: n.outputs,
        name: n.name,
        domain: n.domain ?? '',
        attribute: Object.entries(n.attrs ?? {}).map(([name, v]) => attribute(name, v)),
      })),
      initializer: [...this.initializers.values()].map(tensorProto),
      input: this.inputs.map(valueInfo),
      output: outputs.map((o) => (o.dims.length === 0 ? { name: o.name } : valueInfo(o))),
    };
  }
}

function valueInfo(v: ValueInfo): OnnxNs.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: v.dataType ?? DataType.FLOAT,
        shape: { dim: v.dims.map((d) => (d === null ? { dimParam: 'N' } : { dimValue: d })) },
      },
    },
  };
}

export function tensorProto(t: OnnxInitializer): OnnxNs.ITensorProto {
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { name: t.name, dims: t.dims, dataType: t.dataType, rawData: Uint8Array.from(bytes) };
}

function attribute(name: string, v: AttrValue): OnnxNs.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return { name, type: T.INT, i: v };
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('floats' in v) return { name, type: T.FLOATS, floats: v.floats };
  if ('f' in v && typeof v.f === 'number') return { name, type: T.FLOAT, f: v.f };
  if ('graph' in v) return { name, type: T.GRAPH, g: v.graph };
  return { name, type: T.TENSOR, t: v as OnnxNs.ITensorProto };
}

/**
 * Reads an ONNX model into an OnnxGraph (default-domain opset ≥ 13 only: older graphs use other op signatures,
 * e.g. Squeeze axes as attributes, that the optimisers do not rewrite). Initializers stored as float_data /
 * int32_data / int64_data are converted to typed arrays like raw_data ones.
 */
export function readOnnxGraph(bytes: Uint8Array, name = 'model'): OnnxGraph {
  let model: OnnxNs.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (cause) {
    throw new VisionpipeError('VP_MODEL_INVALID', 'The file is not a readable ONNX model (truncated or not ONNX)', { value: name, cause });
  }
  const opset = Number(model.opsetImport.find((o) => (o.domain ?? '') === '')?.version ?? 0);
  if (model.graph == null) throw new VisionpipeError('VP_MODEL_INVALID', 'The ONNX file has no graph', { value: name });
  if (opset < 13) {
    throw new VisionpipeError('VP_MODEL_UNSUPPORTED', `The ONNX model uses opset ${opset}; visionpipe optimises opset 13 and newer`, {
      value: name,
      hint: 'Re-export it at opset 13 or newer (e.g. tf2onnx --opset 13), or give visionpipe the Keras / TF.js model.',
    });
  }
  // Decoded messages carry protobuf defaults ('' / [] / 0) for absent fields, so the concrete classes apply.
  const graph = model.graph as OnnxNs.GraphProto;
  const g = new OnnxGraph(graph.name || name);
  g.opset = opset;
  for (const t of graph.initializer as OnnxNs.TensorProto[]) g.initializers.set(t.name, initializerOf(t));
  const T = onnx.AttributeProto.AttributeType;
  g.nodes = (graph.node as OnnxNs.NodeProto[]).map((n, i) => {
    const attrs: Record<string, AttrValue> = {};
    for (const a of n.attribute as OnnxNs.AttributeProto[]) {
      if (a.type === T.INT) attrs[a.name] = Number(a.i);
      else if (a.type === T.FLOAT) attrs[a.name] = { f: a.f };
      else if (a.type === T.STRING) attrs[a.name] = new TextDecoder().decode(a.s);
      else if (a.type === T.INTS) attrs[a.name] = a.ints.map(Number);
      else if (a.type === T.FLOATS) attrs[a.name] = { floats: [...a.floats] };
      else if (a.type === T.TENSOR && a.t != null) attrs[a.name] = a.t;
      else if (a.type === T.GRAPH && a.g != null) attrs[a.name] = { graph: a.g };
      else throw new VisionpipeError('VP_MODEL_UNSUPPORTED', `Attribute "${a.name}" of node "${n.name}" (${n.opType}) has a type visionpipe does not read`, { value: name });
    }
    return {
      op: n.opType,
      inputs: [...n.input],
      outputs: [...n.output],
      name: n.name || `${n.opType}_${i}`,
      ...(Object.keys(attrs).length > 0 ? { attrs } : {}),
      ...(n.domain ? { domain: n.domain } : {}),
    };
  });
  const info = (v: OnnxNs.IValueInfoProto): ValueInfo => ({
    name: v.name ?? '',
    dims: (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimValue != null && Number(d.dimValue) > 0 ? Number(d.dimValue) : null)),
    dataType: v.type?.tensorType?.elemType ?? DataType.FLOAT,
  });
  g.inputs = graph.input.filter((v) => !g.initializers.has(v.name ?? '')).map(info);
  g.avoidNames([...g.initializers.keys(), ...g.nodes.flatMap((n) => [n.name, ...n.outputs])]);
  g.outputs = graph.output.map(info);
  return g;
}

function initializerOf(t: OnnxNs.TensorProto): OnnxInitializer {
  const dims = t.dims.map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const raw = t.rawData.byteLength > 0 ? t.rawData : undefined;
  const copy = (bytes: Uint8Array) => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  let data: OnnxInitializer['data'];
  switch (t.dataType) {
    case DataType.FLOAT:
      data = raw ? new Float32Array(copy(raw)) : Float32Array.from(t.floatData);
      break;
    case DataType.INT32:
      data = raw ? new Int32Array(copy(raw)) : Int32Array.from(t.int32Data);
      break;
    case DataType.INT64:
      data = raw ? new BigInt64Array(copy(raw)) : BigInt64Array.from(t.int64Data.map((v) => BigInt(v.toString())));
      break;
    case DataType.INT8:
      data = raw ? new Int8Array(copy(raw)) : Int8Array.from(t.int32Data);
      break;
    case DataType.UINT8:
      data = raw ? new Uint8Array(copy(raw)) : Uint8Array.from(t.int32Data);
      break;
    case DataType.FLOAT16:
      data = raw ? new Uint16Array(copy(raw)) : Uint16Array.from(t.int32Data);
      break;
    default:
      throw new VisionpipeError('VP_MODEL_UNSUPPORTED', `Initializer "${t.name}" has ONNX data type ${t.dataType}, which visionpipe does not read`, {});
  }
  if (data.length !== count) throw new VisionpipeError('VP_MODEL_INVALID', `Initializer "${t.name}" holds ${data.length} values for dims [${dims.join(', ')}]`, {});
  return { name: t.name, dims, data, dataType: t.dataType };
}
