import { createRequire } from 'node:module';
import type { onnx as OnnxNs } from 'onnx-proto';

const { onnx } = createRequire(import.meta.url)('onnx-proto') as { onnx: typeof OnnxNs };

/** A number is an INT attribute; floats are written `{ f: 0.5 }` so 1.0 cannot turn into an integer. */
export type AttrValue = number | { f: number } | string | number[] | { floats: number[] } | OnnxNs.ITensorProto;

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
  private counter = 0;

  constructor(readonly name: string) {}

  /** Continues another graph's name counter (for copies), so fresh names never collide. */
  adoptCounter(other: OnnxGraph): void {
    this.counter = Math.max(this.counter, other.counter);
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
  toBytes(opset = 13, extraOutputs: readonly string[] = []): Uint8Array {
    const outputs = [...this.outputs, ...extraOutputs.filter((t) => !this.outputs.some((o) => o.name === t)).map((name) => ({ name, dims: [] }))];
    const model = onnx.ModelProto.create({
      irVersion: 7,
      producerName: 'visionpipe',
      opsetImport: [{ domain: '', version: opset }],
      graph: {
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
      },
    });
    return onnx.ModelProto.encode(model).finish();
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
  return { name, type: T.TENSOR, t: v as OnnxNs.ITensorProto };
}
