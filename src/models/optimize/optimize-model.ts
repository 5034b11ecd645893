import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cv } from '../../cv.js';
import { VisionpipeError } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { inputByteLength, preprocessInto, type PreprocessSpec } from '../../preprocess/preprocess-frame.js';
import { kerasToOnnx } from '../keras/keras-to-onnx.js';
import { readKerasH5 } from '../keras/read-keras-h5.js';
import type { OnnxGraph } from '../onnx/onnx-graph.js';
import { drawSpeedAgreementChart } from './chart.js';
import { runFrames, score, type VariantScore } from './evaluate-variant.js';
import { fp16Weights } from './fp16-weights.js';
import { runFramesOpenCv, withNchwInput } from './opencv-dnn.js';
import { calibrateAll, computeNodes, quantizeQdq } from './quantize-qdq.js';

export interface OptimizeOptions {
  /** A Keras .h5 model. */
  modelPath: string;
  /** The user's own footage: calibration and evaluation frames come from it. */
  clip: string;
  outDir: string;
  /** Minimum top-1 agreement with fp32 for a variant to be picked (default 0.99). */
  budget?: number;
  calibrationFrames?: number;
  evalFrames?: number;
  /** How frames are fed to the model (default: stretch, RGB, raw 0..255). */
  preprocess?: Partial<Pick<PreprocessSpec, 'resize' | 'pixelFormat' | 'scale' | 'mean' | 'std'>>;
  logger?: Logger;
}

export interface VariantReport extends VariantScore {
  name: string;
  file: string;
  /** Compute nodes left in float (mixed-precision variants). */
  floatNodes?: number;
}

export interface OptimizeReport {
  model: string;
  clip: string;
  budget: number;
  calibrationFrames: number;
  evalFrames: number;
  variants: VariantReport[];
  /** The fastest variant within the budget. */
  picked: string;
  speedupVsFp32: number;
}

/**
 * Imports a Keras model, then writes and measures fp32 (on onnxruntime and on OpenCV DNN), fp16-weight and int8
 * (min-max, percentile, and if needed mixed-precision) ONNX variants on frames of the user's clip: agreement with fp32 and latency on this machine.
 * Picks the fastest variant within the accuracy budget, and writes report.json, report.md and chart.png.
 */
export async function optimizeModel(options: OptimizeOptions): Promise<OptimizeReport> {
  const log = options.logger ?? silentLogger;
  const budget = options.budget ?? 0.99;
  const keras = await readKerasH5(options.modelPath);
  const { graph: fp32, inputShapeNhwc } = kerasToOnnx(keras, basename(options.modelPath));
  const [h, w] = inputShapeNhwc;
  const dims = [1, h, w, inputShapeNhwc[2]];
  if (inputShapeNhwc[2] !== 3) throw new VisionpipeError('VP_MODEL_SHAPE_MISMATCH', 'Only 3-channel image models can be calibrated on video', { value: inputShapeNhwc });
  const spec: PreprocessSpec = {
    inputWh: [w, h], layout: 'nhwc', dtype: 'float32', resize: 'stretch', pixelFormat: 'rgb', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], padValue: 114,
    ...options.preprocess,
  };
  const calibrationCount = options.calibrationFrames ?? 64;
  const evalCount = options.evalFrames ?? 300;
  const { calibration, evaluation } = await sampleFrames(options.clip, spec, calibrationCount, evalCount);
  log.info({ calibration: calibration.length, evaluation: evaluation.length }, 'frames sampled from the clip');
  mkdirSync(options.outDir, { recursive: true });
  const stem = basename(options.modelPath).replace(/\.h5$/i, '');
  const variants: VariantReport[] = [];
  const fp32Bytes = fp32.toBytes();
  const reference = await runFrames(fp32Bytes, evaluation, dims);

  const measure = async (name: string, graph: OnnxGraph | Uint8Array, extra: Partial<VariantReport> = {}) => {
    const bytes = graph instanceof Uint8Array ? graph : graph.toBytes();
    const file = join(options.outDir, `${stem}.${name}.onnx`);
    writeFileSync(file, bytes);
    const run = name === 'fp32' ? reference : await runFrames(bytes, evaluation, dims);
    const v: VariantReport = { name, file, ...score(reference.outputs, run.outputs, run.ms, bytes.byteLength), ...extra };
    log.info({ variant: name, agreement: v.top1Agreement, meanMs: v.meanMs }, 'variant measured');
    variants.push(v);
    return v;
  };

  await measure('fp32', fp32Bytes);
  try {
    const file = join(options.outDir, `${stem}.opencv-dnn-nchw.onnx`);
    const nchw = withNchwInput(fp32).toBytes();
    const run = await runFramesOpenCv(nchw, file, evaluation, [h, w]);
    const v: VariantReport = { name: 'opencv-dnn-fp32', file, ...score(reference.outputs, run.outputs, run.ms, nchw.byteLength) };
    log.info({ variant: v.name, agreement: v.top1Agreement, meanMs: v.meanMs }, 'variant measured');
    variants.push(v);
  } catch (err) {
    log.warn({ reason: err instanceof Error ? err.message : String(err) }, 'OpenCV DNN could not run the fp32 model; its row is left out');
  }
  await measure('fp16-weights', fp16Weights(fp32));
  const ranges = await calibrateAll(fp32, calibration, dims);
  const minmax = await measure('int8-minmax', await quantizeQdq(fp32, { calibration, dims, method: 'minmax', ranges }));
  const pct = await measure('int8-percentile', await quantizeQdq(fp32, { calibration, dims, method: 'percentile', ranges }));
  if (Math.max(minmax.top1Agreement, pct.top1Agreement) < budget) {
    const mixed = await mixedPrecision(fp32, calibration, evaluation, dims, ranges, reference.outputs, budget);
    if (mixed !== null) await measure('int8-mixed', mixed.graph, { floatNodes: mixed.floatNodes });
  }

  const fp32Ms = variants[0]!.meanMs;
  // The picked variant must be one the onnx engine runs; OpenCV DNN is there for comparison.
  const within = variants.filter((v) => v.top1Agreement >= budget && !v.name.startsWith('opencv'));
  const fastest = within.reduce((best, v) => (v.meanMs < best.meanMs ? v : best), variants[0]!);
  // Within 5 % of fp32 is measurement noise, not a reason to give up exactness.
  const picked = fastest.meanMs < 0.95 * fp32Ms ? fastest : variants[0]!;
  const report: OptimizeReport = {
    model: options.modelPath,
    clip: options.clip,
    budget,
    calibrationFrames: calibration.length,
    evalFrames: evaluation.length,
    variants,
    picked: picked.name,
    speedupVsFp32: fp32Ms / picked.meanMs,
  };
  writeFileSync(join(options.outDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(options.outDir, 'report.md'), formatReport(report));
  await drawSpeedAgreementChart(variants, budget, join(options.outDir, 'chart.png'));
  return report;
}

/**
 * Keeps the compute nodes whose quantization costs the most agreement in float, one at a time (most sensitive
 * first), until the variant meets the budget. Null if even all-float-but-one cannot meet it.
 */
async function mixedPrecision(
  fp32: OnnxGraph,
  calibration: Float32Array[],
  evaluation: Float32Array[],
  dims: number[],
  ranges: Awaited<ReturnType<typeof calibrateAll>>,
  reference: Float32Array[],
  budget: number,
) {
  const agreementOf = async (floatSet: Set<number>) => {
    const g = await quantizeQdq(fp32, { calibration, dims, method: 'minmax', ranges, keepFloat: (_n, i) => floatSet.has(i) });
    const run = await runFrames(g.toBytes(), evaluation, dims, 0);
    return { g, agreement: score(reference, run.outputs, run.ms, 0).top1Agreement };
  };
  const computeCount = computeNodes(fp32).length;
  const gains: Array<[number, number]> = [];
  for (let i = 0; i < computeCount; i++) gains.push([i, (await agreementOf(new Set([i]))).agreement]);
  gains.sort((a, b) => b[1] - a[1]);
  const floatSet = new Set<number>();
  for (const [i] of gains) {
    floatSet.add(i);
    const { g, agreement } = await agreementOf(floatSet);
    if (agreement >= budget) return { graph: g, floatNodes: floatSet.size };
    if (floatSet.size >= computeCount / 2) break;
  }
  return null;
}

/** Calibration frames spread over the first half of the clip, evaluation frames over the second half. */
async function sampleFrames(clip: string, spec: PreprocessSpec, calibrationCount: number, evalCount: number) {
  const cap = new cv.VideoCapture(clip, cv.CAP_FFMPEG);
  const total = Math.max(2, Math.round(cap.get(cv.CAP_PROP_FRAME_COUNT)));
  const take = async (from: number, to: number, count: number) => {
    const out: Float32Array[] = [];
    const step = Math.max(1, Math.floor((to - from) / count));
    for (let i = from; i < to && out.length < count; i += step) {
      cap.set(cv.CAP_PROP_POS_FRAMES, i);
      const frame = await cap.readAsync();
      if (frame.empty) break;
      const buffer = new ArrayBuffer(inputByteLength(spec));
      await preprocessInto(frame, spec, buffer);
      frame.release();
      out.push(new Float32Array(buffer));
    }
    return out;
  };
  try {
    const half = Math.floor(total / 2);
    const calibration = await take(0, half, calibrationCount);
    const evaluation = await take(half, total, evalCount);
    if (calibration.length === 0 || evaluation.length === 0) {
      throw new VisionpipeError('VP_SOURCE_UNREADABLE', 'The clip gave no frames to calibrate on', { value: clip });
    }
    return { calibration, evaluation };
  } finally {
    cap.release();
  }
}

export function formatReport(r: OptimizeReport): string {
  const rows = r.variants.map(
    (v) =>
      `| ${v.name === r.picked ? `**${v.name}**` : v.name} | ${(100 * v.top1Agreement).toFixed(1)} % | ${(100 * v.top1AgreementConfident).toFixed(1)} % | ${v.meanAbsProbDiff.toExponential(2)} | ${v.meanMs.toFixed(2)} | ${v.p99Ms.toFixed(2)} | ${(r.variants[0]!.meanMs / v.meanMs).toFixed(2)}x | ${(v.sizeBytes / 1024).toFixed(0)} KiB | ${v.floatNodes === undefined ? '' : `${v.floatNodes} float nodes`} |`,
  );
  return [
    `# visionpipe optimize: ${basename(r.model)}`,
    '',
    `Calibrated on ${r.calibrationFrames} frames and evaluated on ${r.evalFrames} other frames of \`${basename(r.clip)}\`, on this machine (onnxruntime CPU, batch 1).`,
    `Accuracy budget: top-1 agreement with fp32 ≥ ${(100 * r.budget).toFixed(1)} %. Picked: **${r.picked}** (${r.speedupVsFp32.toFixed(2)}x fp32's speed).`,
    '',
    '| variant | top-1 agreement | … where fp32 is confident (margin ≥ 0.1) | mean abs prob diff | mean ms | p99 ms | speed vs fp32 | file | notes',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    '![speed vs agreement](chart.png)',
    '',
  ].join('\n');
}
