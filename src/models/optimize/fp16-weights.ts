import { DataType, type OnnxGraph } from '../onnx/onnx-graph.js';
import { cloneGraph } from './quantize-qdq.js';

/** IEEE half-precision bits of a float (round to nearest even), for weight storage. */
export function toHalfBits(value: number): number {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rem > mid || (rem === mid && (half & 1) === 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  return sign | (half + (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1) ? 1 : 0));
}

/**
 * Stores every large float weight as float16 (half the file) behind a Cast back to float32: the compute stays
 * fp32, which onnxruntime's CPU provider needs, and it folds the Casts at load time.
 */
export function fp16Weights(fp32: OnnxGraph, minElements = 64): OnnxGraph {
  const g = cloneGraph(fp32);
  for (const [name, init] of [...g.initializers]) {
    if (!(init.data instanceof Float32Array) || init.data.length < minElements) continue;
    const half = Uint16Array.from(init.data, toHalfBits);
    const stored = g.constant(`${name}_fp16`, init.dims, half, DataType.FLOAT16);
    g.initializers.delete(name);
    g.nodes.unshift({ op: 'Cast', inputs: [stored], outputs: [name], name: g.fresh('cast_fp16'), attrs: { to: DataType.FLOAT } });
  }
  return g;
}
