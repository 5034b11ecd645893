import * as ort from 'onnxruntime-node';
import { percentile } from '../../metrics/run-stats.js';

export interface VariantScore {
  /** Share of frames whose top-1 class equals fp32's. */
  top1Agreement: number;
  /** The same, over the frames where fp32 is confident (top-1 leads top-2 by ≥ 0.1): flips there are real errors. */
  top1AgreementConfident: number;
  /** Mean over frames and classes of |p − p_fp32|. */
  meanAbsProbDiff: number;
  meanMs: number;
  p99Ms: number;
  sizeBytes: number;
}

/** Runs a model over frames (batch 1) and returns its outputs and per-frame latencies. */
export async function runFrames(model: Uint8Array, frames: Float32Array[], dims: number[], warmup = 3): Promise<{ outputs: Float32Array[]; ms: number[] }> {
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', executionProviders: ['cpu'] });
  try {
    const inputName = session.inputNames[0]!;
    const outputName = session.outputNames[0]!;
    const run = async (x: Float32Array) => {
      const r = await session.run({ [inputName]: new ort.Tensor('float32', x, dims) });
      return Float32Array.from(r[outputName]!.data as Float32Array);
    };
    for (let i = 0; i < Math.min(warmup, frames.length); i++) await run(frames[i]!);
    const outputs: Float32Array[] = [];
    const ms: number[] = [];
    for (const x of frames) {
      const t = performance.now();
      outputs.push(await run(x));
      ms.push(performance.now() - t);
    }
    return { outputs, ms };
  } finally {
    await session.release();
  }
}

const argmax = (a: Float32Array) => a.reduce((best, v, i) => (v > a[best]! ? i : best), 0);

/** Compares a variant's outputs with fp32's, frame by frame. */
export function score(reference: Float32Array[], outputs: Float32Array[], ms: number[], sizeBytes: number): VariantScore {
  let agree = 0;
  let confident = 0;
  let confidentAgree = 0;
  let diff = 0;
  let count = 0;
  reference.forEach((ref, f) => {
    const out = outputs[f]!;
    const same = argmax(ref) === argmax(out);
    if (same) agree++;
    const [first = 0, second = 0] = [...ref].sort((a, b) => b - a);
    if (first - second >= 0.1) {
      confident++;
      if (same) confidentAgree++;
    }
    for (let i = 0; i < ref.length; i++) diff += Math.abs(ref[i]! - out[i]!);
    count += ref.length;
  });
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    top1Agreement: agree / Math.max(1, reference.length),
    top1AgreementConfident: confidentAgree / Math.max(1, confident),
    meanAbsProbDiff: diff / Math.max(1, count),
    meanMs: ms.reduce((a, b) => a + b, 0) / Math.max(1, ms.length),
    p99Ms: percentile(sorted, 99),
    sizeBytes,
  };
}
