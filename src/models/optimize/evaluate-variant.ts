import { readFileSync, rmSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { percentile } from '../../metrics/run-stats.js';
import { iou } from '../../postprocess/detect.js';
import { readOnnxGraph } from '../onnx/onnx-graph.js';

/** What a variant is compared on: classifiers by top-1 class, detectors box by box. */
export type AgreementMetric = 'top-1' | 'box-f1';

export interface VariantScore {
  metric: AgreementMetric;
  /**
   * top-1: share of frames whose top-1 class equals fp32's. box-f1: F1 of the variant's boxes against fp32's
   * (same class, IoU ≥ 0.5; a box counts as found when the other side has it above minScore − 0.05, so a score
   * hovering at the threshold is not a disagreement).
   */
  agreement: number;
  /** top-1 only: agreement over the frames where fp32 is confident (top-1 leads top-2 by ≥ 0.1): flips there are real errors. */
  top1AgreementConfident?: number;
  /** top-1 only: mean over frames and classes of |p − p_fp32|. */
  meanAbsProbDiff?: number;
  /** box-f1 only: box counts and how closely matched boxes agree. */
  boxes?: BoxAgreement;
  meanMs: number;
  p99Ms: number;
  sizeBytes: number;
}

export interface BoxAgreement {
  reference: number;
  variant: number;
  matched: number;
  meanIou: number;
  meanAbsScoreDiff: number;
  /** Share of fp32's boxes the variant reproduces with the same class, IoU ≥ 0.9 and a score within 0.02. */
  sameWithinTolerance: number;
}

/** Runs a model over frames (batch 1) and returns its first output and per-frame latencies. */
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

/** Mean and p99 of a latency list. */
export function latencyOf(ms: readonly number[]): { meanMs: number; p99Ms: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  return { meanMs: ms.reduce((a, b) => a + b, 0) / Math.max(1, ms.length), p99Ms: percentile(sorted, 99) };
}

const argmax = (a: Float32Array) => a.reduce((best, v, i) => (v > a[best]! ? i : best), 0);

/** Compares a classifier variant's outputs (probabilities) with fp32's, frame by frame. */
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
  return {
    metric: 'top-1',
    agreement: agree / Math.max(1, reference.length),
    top1AgreementConfident: confidentAgree / Math.max(1, confident),
    meanAbsProbDiff: diff / Math.max(1, count),
    ...latencyOf(ms),
    sizeBytes,
  };
}

interface Box {
  classId: number;
  score: number;
  xyxy: number[];
}

/** Rows of (x1, y1, x2, y2, score, class) with score ≥ minScore, best first. */
function boxesOf(out: Float32Array, minScore: number): Box[] {
  const boxes: Box[] = [];
  for (let r = 0; r + 6 <= out.length; r += 6) {
    const s = out[r + 4]!;
    if (s >= minScore) boxes.push({ classId: Math.round(out[r + 5]!), score: s, xyxy: [out[r]!, out[r + 1]!, out[r + 2]!, out[r + 3]!] });
  }
  return boxes.sort((a, b) => b.score - a.score);
}

/** Greedy best-IoU matching of `from` boxes to unused same-class `to` boxes with IoU ≥ 0.5. */
function match(from: Box[], to: Box[]): Array<[Box, Box, number]> {
  const used = new Set<Box>();
  const pairs: Array<[Box, Box, number]> = [];
  for (const a of from) {
    let best: Box | undefined;
    let bestIou = 0.5;
    for (const b of to) {
      if (used.has(b) || b.classId !== a.classId) continue;
      const o = iou(a.xyxy, b.xyxy);
      if (o >= bestIou) [best, bestIou] = [b, o];
    }
    if (best !== undefined) {
      used.add(best);
      pairs.push([a, best, bestIou]);
    }
  }
  return pairs;
}

/** Compares a detector variant's [1, N, 6] box rows with fp32's, box by box. */
export function scoreDetections(reference: Float32Array[], outputs: Float32Array[], ms: number[], sizeBytes: number, minScore = 0.3): VariantScore {
  const slack = 0.05;
  let nRef = 0;
  let nVar = 0;
  let refFound = 0;
  let varFound = 0;
  let matched = 0;
  let iouSum = 0;
  let scoreDiffSum = 0;
  let same = 0;
  reference.forEach((ref, f) => {
    const a = boxesOf(ref, minScore);
    const b = boxesOf(outputs[f]!, minScore);
    nRef += a.length;
    nVar += b.length;
    refFound += match(a, boxesOf(outputs[f]!, minScore - slack)).length;
    varFound += match(b, boxesOf(ref, minScore - slack)).length;
    for (const [x, y, o] of match(a, b)) {
      matched++;
      iouSum += o;
      const d = Math.abs(x.score - y.score);
      scoreDiffSum += d;
      if (o >= 0.9 && d <= 0.02) same++;
    }
  });
  const recall = nRef === 0 ? 1 : refFound / nRef;
  const precision = nVar === 0 ? 1 : varFound / nVar;
  return {
    metric: 'box-f1',
    agreement: recall + precision === 0 ? 0 : (2 * recall * precision) / (recall + precision),
    boxes: {
      reference: nRef,
      variant: nVar,
      matched,
      meanIou: matched === 0 ? 0 : iouSum / matched,
      meanAbsScoreDiff: matched === 0 ? 0 : scoreDiffSum / matched,
      sameWithinTolerance: nRef === 0 ? 1 : same / nRef,
    },
    ...latencyOf(ms),
    sizeBytes,
  };
}

/** A model opened on an engine, ready to run one input at a time. */
export interface OpenedRunner {
  run(x: Float32Array): Promise<unknown>;
  close(): Promise<void>;
}

/** Something to time: one model on one engine, opened afresh for each round of timeAlternating. */
export interface TimedVariant {
  name: string;
  open(): Promise<OpenedRunner>;
}

/** An onnxruntime model file as a TimedVariant (from a file, so callers need not keep model bytes around). */
export function onnxVariant(name: string, modelFile: string, dims: number[]): TimedVariant {
  return {
    name,
    async open() {
      const session = await ort.InferenceSession.create(modelFile, { graphOptimizationLevel: 'all', executionProviders: ['cpu'] });
      const inputName = session.inputNames[0]!;
      return { run: (x) => session.run({ [inputName]: new ort.Tensor('float32', x, dims) }), close: () => session.release() };
    },
  };
}

export interface AlternatingOptions {
  /** Frames per variant per round. */
  framesPerRound?: number;
  minRounds?: number;
  maxRounds?: number;
  /** Stop once every variant has run this long in total (after minRounds). */
  targetMsPerVariant?: number;
}

/**
 * Per-run latencies of several variants measured side by side: rounds in which each variant in turn is opened,
 * warmed up (2 untimed runs), timed on the same frames and closed, so all of them see the same machine state (a
 * one-after-the-other loop lets a background burst land on one variant only, which for sub-millisecond models
 * decides which looks fastest). Only one variant is open at a time: onnxruntime's idle thread pools spin for a
 * while after each run, and another open session's spinning threads slowed int8 ResNet-50 by ~20 % here.
 */
export async function timeAlternating(variants: TimedVariant[], frames: Float32Array[], options: AlternatingOptions = {}): Promise<Map<string, number[]>> {
  const { framesPerRound = 30, minRounds = 3, maxRounds = 20, targetMsPerVariant = 1000 } = options;
  const inputs = frames.slice(0, Math.max(1, Math.min(framesPerRound, frames.length)));
  const ms = new Map(variants.map((v) => [v.name, [] as number[]]));
  const total = new Map(variants.map((v) => [v.name, 0]));
  for (let round = 0; round < maxRounds; round++) {
    for (const v of variants) {
      const runner = await v.open();
      try {
        for (let i = 0; i < 2; i++) await runner.run(inputs[i % inputs.length]!);
        for (const x of inputs) {
          const t = performance.now();
          await runner.run(x);
          const dt = performance.now() - t;
          ms.get(v.name)!.push(dt);
          total.set(v.name, total.get(v.name)! + dt);
        }
      } finally {
        await runner.close();
      }
    }
    if (round + 1 >= minRounds && [...total.values()].every((t) => t >= targetMsPerVariant)) break;
  }
  return ms;
}

/** What onnxruntime actually runs of a quantized model, from its optimised graph. */
export interface IntegerCoverage {
  /** QLinear* / integer kernels (QLinearConv, QLinearAdd, QLinearMul, …). */
  integerKernels: number;
  /** QuantizeLinear / DequantizeLinear left: each is a float ↔ int8 conversion of a whole tensor at run time. */
  quantize: number;
  dequantize: number;
}

/**
 * Opens `model` with every onnxruntime optimisation, has it write the optimised graph, and counts what is left:
 * integer kernels and the Q / DQ conversions between them and float ops.
 */
export async function integerCoverage(model: Uint8Array, optimizedFile: string): Promise<IntegerCoverage> {
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', executionProviders: ['cpu'], optimizedModelFilePath: optimizedFile });
  await session.release();
  const g = readOnnxGraph(readFileSync(optimizedFile), 'optimized');
  rmSync(optimizedFile, { force: true });
  const count = (f: (op: string) => boolean) => g.nodes.filter((n) => f(n.op)).length;
  return {
    integerKernels: count((op) => op.startsWith('QLinear') || op === 'ConvInteger' || op === 'MatMulInteger' || op === 'QGemm'),
    quantize: count((op) => op === 'QuantizeLinear'),
    dequantize: count((op) => op === 'DequantizeLinear'),
  };
}
