import * as ort from 'onnxruntime-node';
import { VisionpipeError, messageOf } from '../../errors.js';
import { DataType, type OnnxGraph } from './onnx-graph.js';
import type { ProbedTensor } from './dynamic-batch.js';

const ONNX_TYPE: Record<string, number> = { float32: DataType.FLOAT, uint8: DataType.UINT8, int8: DataType.INT8, int32: DataType.INT32, int64: DataType.INT64, bool: 9, float16: DataType.FLOAT16, float64: 11 };

/** A deterministic test image (a few gradients and edges), batch 1, in the input's element type and shape. */
export function testImage(dims: readonly number[], dataType: number, seed = 0): Float32Array | Uint8Array {
  const n = dims.reduce((a, b) => a * b, 1);
  const out = dataType === DataType.UINT8 ? new Uint8Array(n) : new Float32Array(n);
  const h = dims[1] ?? 1;
  const w = dims[2] ?? 1;
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    const x = Math.floor(i / 3) % w;
    const y = Math.floor(i / 3 / w) % h;
    const v = (x * (3 + seed) + y * (5 + c + seed) + ((x >> 4) + (y >> 4)) % 2 * 90) % 256;
    out[i] = dataType === DataType.UINT8 ? v : v / 255;
  }
  return out;
}

/** Values fetched per probe run. */
const PROBE_VALUES_PER_RUN = 48;

/** Runs `graph` once on `input` with every node output exposed: each value's shape, type and (small ints) contents. */
export async function probeGraph(graph: OnnxGraph, input: Float32Array | Uint8Array): Promise<Map<string, ProbedTensor>> {
  const inputInfo = graph.inputs[0];
  if (inputInfo === undefined) throw new VisionpipeError('VP_MODEL_INVALID', 'The model has no input', { value: graph.name });
  const names = graph.nodes.flatMap((n) => n.outputs).filter((t) => t !== '');
  const session = await sessionOf(graph.toBytes(graph.opset, names), 'disabled');
  try {
    const feeds = { [inputInfo.name]: tensor(input, inputInfo.dims.map((d) => d ?? 1)) };
    const probe = new Map<string, ProbedTensor>();
    probe.set(inputInfo.name, { dims: inputInfo.dims.map((d) => d ?? 1), dataType: inputInfo.dataType ?? DataType.FLOAT });
    // A few values per run: all of a large model's activations at once would take GBs (CenterNet: ~670 MB of results).
    const results: Array<[string, ort.Tensor]> = [];
    for (let i = 0; i < names.length; i += PROBE_VALUES_PER_RUN) {
      const part = await session.run(feeds, names.slice(i, i + PROBE_VALUES_PER_RUN));
      for (const [name, t] of Object.entries(part)) {
        const small = (t.type === 'int64' || t.type === 'int32') && t.size <= 64;
        // Only the shape (and small integer values) are kept; the tensor's memory goes with this run.
        results.push([name, small ? t : ({ dims: t.dims, type: t.type, size: t.size } as ort.Tensor)]);
      }
    }
    for (const [name, t] of results) {
      const small = (t.type === 'int64' || t.type === 'int32') && t.size <= 64;
      probe.set(name, {
        dims: [...t.dims],
        dataType: ONNX_TYPE[t.type] ?? DataType.FLOAT,
        ...(small ? { ints: Array.from(t.data as BigInt64Array | Int32Array, Number) } : {}),
      });
    }
    return probe;
  } finally {
    await session.release();
  }
}

/**
 * The largest difference between `batched` run on a batch of `images` and `original` run on each image alone, over
 * every output, relative to the output's own scale (max |value|, at least 1).
 */
export async function batchDifference(original: OnnxGraph, batched: OnnxGraph, images: ReadonlyArray<Float32Array | Uint8Array>): Promise<number> {
  const inputInfo = original.inputs[0]!;
  const dims = inputInfo.dims.map((d) => d ?? 1);
  let one: ort.InferenceSession | undefined;
  let many: ort.InferenceSession | undefined;
  try {
    one = await sessionOf(original.toBytes(), 'all');
    many = await sessionOf(batched.toBytes(), 'all');
    const per = images[0]!.length;
    const joined = images[0] instanceof Uint8Array ? new Uint8Array(per * images.length) : new Float32Array(per * images.length);
    images.forEach((im, i) => joined.set(im, i * per));
    const together = await many.run({ [batched.inputs[0]!.name]: tensor(joined, [images.length, ...dims.slice(1)]) });
    let worst = 0;
    for (const [i, im] of images.entries()) {
      const alone = await one.run({ [inputInfo.name]: tensor(im, dims) });
      for (const o of original.outputs) {
        const a = alone[o.name]!.data as Float32Array;
        const b = together[o.name]!.data as Float32Array;
        if (b.length !== a.length * images.length) return Infinity;
        let scale = 1;
        for (const v of a) scale = Math.max(scale, Math.abs(Number(v)));
        for (let k = 0; k < a.length; k++) worst = Math.max(worst, Math.abs(Number(a[k]) - Number(b[i * a.length + k])) / scale);
      }
    }
    return worst;
  } finally {
    await Promise.allSettled([one?.release(), many?.release()]);
  }
}

async function sessionOf(bytes: Uint8Array, level: 'disabled' | 'all'): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], graphOptimizationLevel: level });
  } catch (cause) {
    throw new VisionpipeError('VP_MODEL_INVALID', `onnxruntime could not load the rewritten model: ${messageOf(cause)}`, { cause });
  }
}

function tensor(data: Float32Array | Uint8Array, dims: number[]): ort.Tensor {
  return data instanceof Uint8Array ? new ort.Tensor('uint8', data, dims) : new ort.Tensor('float32', data, dims);
}

/**
 * Inference time per image of `batched` at each batch size in `sizes`, on this machine: the sizes take turns for
 * `rounds` rounds (so a busy moment slows them alike), each running at least `minImages` images; medians.
 */
export async function timePerImage(batched: OnnxGraph, sizes: readonly number[], options: ort.InferenceSession.SessionOptions, rounds = 3, minImages = 4): Promise<Map<number, number>> {
  const inputInfo = batched.inputs[0]!;
  const dims = inputInfo.dims.slice(1).map((d) => d ?? 1);
  const session = await ort.InferenceSession.create(batched.toBytes(), { executionProviders: ['cpu'], graphOptimizationLevel: 'all', ...options });
  try {
    const feeds = sizes.map((n) => {
      const image = testImage([1, ...dims], inputInfo.dataType ?? DataType.FLOAT);
      const data = image instanceof Uint8Array ? new Uint8Array(image.length * n) : new Float32Array(image.length * n);
      for (let i = 0; i < n; i++) data.set(image, i * image.length);
      return { [inputInfo.name]: tensor(data, [n, ...dims]) };
    });
    for (const f of feeds) await session.run(f); // warm-up: first-run allocations
    const samples = new Map<number, number[]>(sizes.map((n) => [n, []]));
    for (let r = 0; r < rounds; r++) {
      for (const [k, n] of sizes.entries()) {
        const calls = Math.ceil(minImages / n);
        const start = performance.now();
        for (let c = 0; c < calls; c++) await session.run(feeds[k]!);
        samples.get(n)!.push((performance.now() - start) / (calls * n));
      }
    }
    return new Map([...samples].map(([n, ms]) => [n, [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)]!]));
  } finally {
    await session.release();
  }
}
