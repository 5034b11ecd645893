import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { VisionpipeError, messageOf } from '../../errors.js';

export interface TfNode {
  name: string;
  op: string;
  /** Input tensor references: `name` or `name:k`; control inputs (`^name`) are dropped. */
  inputs: string[];
  attr: Record<string, TfAttr>;
}

export interface TfAttr {
  i?: string | number;
  f?: number;
  b?: boolean;
  s?: string;
  type?: string;
  list?: { i?: Array<string | number>; s?: string[]; f?: number[] };
}

export interface TfConst {
  dtype: 'float32' | 'int32';
  shape: number[];
  data: Float32Array | Int32Array;
}

export interface TfGraph {
  nodes: TfNode[];
  consts: Map<string, TfConst>;
  inputs: Array<{ name: string; shape: number[] }>;
  outputs: string[];
}

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  quantization?: { dtype: 'float16' | 'uint8' | 'uint16'; scale?: number; min?: number; original_dtype?: string };
}

/** Reads a TF.js graph model (model.json + weight shards, as tensorflowjs_converter writes them) from disk. */
export function readTfjsGraph(modelJson: string): TfGraph {
  if (!existsSync(modelJson)) throw new VisionpipeError('VP_MODEL_NOT_FOUND', 'The TF.js model.json does not exist', { value: modelJson });
  let json: {
    format?: string;
    modelTopology?: { node?: Array<{ name: string; op: string; input?: string[]; attr?: Record<string, TfAttr> }> };
    weightsManifest?: Array<{ paths: string[]; weights: ManifestEntry[] }>;
    signature?: { inputs?: Record<string, { name: string; tensorShape?: { dim?: Array<{ size: string }> } }>; outputs?: Record<string, { name: string }> };
  };
  try {
    json = JSON.parse(readFileSync(modelJson, 'utf8')) as typeof json;
  } catch (cause) {
    throw new VisionpipeError('VP_MODEL_INVALID', `Cannot parse the TF.js model.json (${messageOf(cause)})`, { value: modelJson, cause });
  }
  const rawNodes = json.modelTopology?.node;
  if (json.format !== 'graph-model' || rawNodes === undefined || json.weightsManifest === undefined) {
    throw new VisionpipeError('VP_MODEL_INVALID', 'Not a TF.js graph model (format "graph-model" with nodes and a weights manifest)', { value: modelJson });
  }
  const consts = new Map<string, TfConst>();
  for (const group of json.weightsManifest) {
    const buffer = Buffer.concat(group.paths.map((p) => readFileSync(join(dirname(modelJson), p))));
    let offset = 0;
    for (const w of group.weights) {
      const count = w.shape.reduce((a, b) => a * b, 1);
      const q = w.quantization;
      const bytes = count * (q === undefined ? 4 : q.dtype === 'uint8' ? 1 : 2);
      if (offset + bytes > buffer.length) throw new VisionpipeError('VP_MODEL_INVALID', `Weight "${w.name}" runs past the end of the weight files (truncated?)`, { value: modelJson });
      const view = buffer.subarray(offset, offset + bytes);
      offset += bytes;
      consts.set(w.name, { dtype: w.dtype, shape: w.shape, data: decode(view, count, w) });
    }
  }
  const nodes: TfNode[] = rawNodes.map((n) => ({ name: n.name, op: n.op, inputs: (n.input ?? []).filter((i) => !i.startsWith('^')), attr: n.attr ?? {} }));
  const inputs = Object.values(json.signature?.inputs ?? {}).map((i) => ({ name: i.name.replace(/:0$/, ''), shape: (i.tensorShape?.dim ?? []).map((d) => Number(d.size)) }));
  const outputs = Object.values(json.signature?.outputs ?? {}).map((o) => o.name.replace(/:0$/, ''));
  return { nodes, consts, inputs, outputs };
}

function decode(view: Buffer, count: number, w: ManifestEntry): Float32Array | Int32Array {
  const aligned = Uint8Array.from(view).buffer;
  const q = w.quantization;
  if (q === undefined) return w.dtype === 'int32' ? new Int32Array(aligned) : new Float32Array(aligned);
  if (q.dtype === 'float16') return Float32Array.from(new Uint16Array(aligned), halfToFloat);
  const raw = q.dtype === 'uint8' ? new Uint8Array(aligned) : new Uint16Array(aligned);
  const out = Float32Array.from(raw, (v) => v * (q.scale ?? 1) + (q.min ?? 0));
  return w.dtype === 'int32' ? Int32Array.from(out, Math.round) : out.subarray(0, count);
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (mant / 1024);
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * 2 ** (exp - 15) * (1 + mant / 1024);
}
