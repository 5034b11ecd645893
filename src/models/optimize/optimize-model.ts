import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cv, type Mat } from '../../cv.js';
import { openVideoFile } from '../../sources/file-source.js';
import { VisionpipeError } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { inputByteLength, preprocessInto, type PreprocessSpec } from '../../preprocess/preprocess-frame.js';
import { importModel } from '../convert-model.js';
import { readOnnxGraph, type OnnxGraph } from '../onnx/onnx-graph.js';
import { drawSpeedAgreementChart } from './chart.js';
import { integerCoverage, latencyOf, onnxVariant, runFrames, score, scoreDetections, timeAlternating, type AgreementMetric, type IntegerCoverage, type TimedVariant, type VariantScore } from './evaluate-variant.js';
import { loadOptimizeSubject, writeVariantDescriptor, type OptimizeSubject } from './optimize-subject.js';
import { fp16Weights } from './fp16-weights.js';
import { openCvVariant, runFramesOpenCv, withNchwInput } from './opencv-dnn.js';
import { correctBias } from './bias-correction.js';
import type { CalibrationMethod } from './calibrate.js';
import { equalizeCrossLayer } from './equalize.js';
import { calibrateAll, computeNodes, prepareForQuantization, quantizeQdq, type QuantizeOptions } from './quantize-qdq.js';
import { attributeKernels, conversionMsPerElement, profileKernels } from './node-times.js';
import { sensitivityGuidedMixed, type FloatLayer, type FrontierPoint } from './sensitivity.js';
import { integerWeightTypeForThisCpu } from '../tflite/tflite-to-onnx.js';

export interface OptimizeOptions {
  /** A Keras .h5, TF.js graph model.json or ONNX file, or a model descriptor (name in models/ or .yaml path). */
  model: string;
  /** The user's own footage: calibration and evaluation frames come from it. */
  clip: string;
  /**
   * Evaluate on frames spread over this other clip (all of it) instead of the second half of `clip`: how well
   * int8 calibrated on one scene holds on another.
   */
  evalClip?: string;
  outDir: string;
  /** Minimum agreement with fp32 (top-1 for classifiers, box F1 for detectors) for a variant to be picked (default 0.99). */
  budget?: number;
  calibrationFrames?: number;
  evalFrames?: number;
  /** How frames are fed to a bare model file (default: stretch, RGB, raw 0..255; a descriptor brings its own). */
  preprocess?: Partial<Pick<PreprocessSpec, 'resize' | 'interpolation' | 'pixelFormat' | 'scale' | 'mean' | 'std'>>;
  /** Detectors: boxes below this score are not compared (default 0.3). */
  minScore?: number;
  /**
   * Other exports of the same network (e.g. the TFLite converter's int8 .tflite, or an .onnx), converted and measured
   * as variants beside visionpipe's own, and picked by the same rule.
   */
  compare?: string[];
  logger?: Logger;
}

export interface VariantReport extends VariantScore {
  name: string;
  file: string;
  /** Compute nodes left in float (mixed-precision variants). */
  floatNodes?: number;
  /** int8 variants: how ranges were set and what was applied before quantizing. */
  method?: string;
  /** Sensitivity-guided mixed precision: the tensors left in float, most error per MAC first. */
  floatLayers?: FloatLayer[];
  /** Quantized variants: what onnxruntime runs after its fusions (integer kernels, Q / DQ left). */
  coverage?: IntegerCoverage;
}

/** Agreement of the same quantization arrangement simulated at more bits: how many this model needs on this clip. */
export interface PrecisionPoint {
  bits: number;
  /** Only the weights (activations float) or only the activations rounded: which of the two the loss comes from. */
  only?: 'weights' | 'activations';
  agreement: number;
}

export interface OptimizeReport {
  model: string;
  clip: string;
  /** Where the evaluation frames came from when not from the second half of `clip`. */
  evalClip?: string;
  task: OptimizeSubject['task'];
  metric: AgreementMetric;
  budget: number;
  calibrationFrames: number;
  evalFrames: number;
  variants: VariantReport[];
  /** Timed runs per variant (alternating rounds). */
  latencyRunsPerVariant: number;
  /** The fastest variant within the budget. */
  picked: string;
  speedupVsFp32: number;
  /** Present when no int8 variant meets the budget. */
  precisionSweep?: PrecisionPoint[];
  /** Sensitivity-guided mixed precision (when no int8 variant met the budget): float tensors → agreement on the calibration frames (what the search saw). */
  mixedFrontier?: { candidates: number; points: FrontierPoint[] };
}

/** How a mixed variant from each search order is named: int8-mixed-by-<suffix>. */
const MIXED_ORDER_SUFFIX: Record<FrontierPoint['order'], string> = {
  'sensitivity per MAC': 'sensitivity',
  'graph order from the input': 'graph-order',
  'error per ms saved (profiled)': 'time',
};

/** Above this many compute nodes the one-node-at-a-time sensitivity search of the mixed variant takes too long. */
const MIXED_SEARCH_MAX_NODES = 32;

/**
 * Imports a model, then writes and measures fp32 (on onnxruntime and on OpenCV DNN), fp16-weight and int8
 * (min-max, percentile and MSE ranges; the best of those after cross-layer equalization, and after equalization and
 * bias correction; if needed mixed-precision) ONNX variants on frames of the user's clip: agreement with
 * fp32 and latency on this machine. Picks the fastest variant within the accuracy budget, and writes report.json,
 * report.md and chart.png. When int8 misses the budget, simulates the same arrangement at more bits to say how
 * many the model needs on this footage.
 */
export async function optimizeModel(options: OptimizeOptions): Promise<OptimizeReport> {
  const log = options.logger ?? silentLogger;
  const budget = options.budget ?? 0.99;
  const minScore = options.minScore ?? 0.3;
  const subject = await loadOptimizeSubject(options.model, options.preprocess);
  const { graph: fp32, spec, dims, stem } = subject;
  const others = await importComparisons(options.compare ?? [], fp32);
  const calibrationCount = options.calibrationFrames ?? 64;
  const evalCount = options.evalFrames ?? 300;
  const { calibration, evaluation } =
    options.evalClip === undefined
      ? await sampleFrames(options.clip, spec, calibrationCount, evalCount)
      : { calibration: (await spreadFrames(options.clip, spec, [[0, 0.5, calibrationCount]]))[0]!, evaluation: (await spreadFrames(options.evalClip, spec, [[0, 1, evalCount]]))[0]! };
  log.info({ model: stem, task: subject.task, calibration: calibration.length, evaluation: evaluation.length }, 'frames sampled from the clip');
  mkdirSync(options.outDir, { recursive: true });
  const variants: VariantReport[] = [];
  const fp32Bytes = fp32.toBytes();
  const reference = await runFrames(fp32Bytes, evaluation, dims);
  const compareTo = (ref: Float32Array[], outputs: Float32Array[], ms: number[], sizeBytes: number): VariantScore =>
    subject.output === 'boxes'
      ? scoreDetections(ref, outputs, ms, sizeBytes, minScore)
      : subject.output === 'logits'
        ? score(ref.map(softmax), outputs.map(softmax), ms, sizeBytes)
        : score(ref, outputs, ms, sizeBytes);
  const compare = (outputs: Float32Array[], ms: number[], sizeBytes: number) => compareTo(reference.outputs, outputs, ms, sizeBytes);
  const agreementOf = async (g: OnnxGraph) => {
    const run = await runFrames(g.toBytes(), evaluation, dims, 0);
    return compare(run.outputs, run.ms, 0).agreement;
  };
  // The mixed-precision searches choose how many tensors stay float against fp32's answers on the calibration
  // frames, never on the held-out ones: the agreement reported for their variants is then a measurement, not the
  // criterion they were selected by (a bisection to the budget on the held-out frames would fit their noise).
  let calibrationReference: Float32Array[] | undefined;
  const searchAgreementOf = async (g: OnnxGraph) => {
    calibrationReference ??= (await runFrames(fp32Bytes, calibration, dims, 0)).outputs;
    const run = await runFrames(g.toBytes(), calibration, dims, 0);
    return compareTo(calibrationReference, run.outputs, run.ms, 0).agreement;
  };

  // Agreement is measured variant by variant; latency afterwards, all variants side by side (timeAlternating).
  const timed: TimedVariant[] = [];
  const measure = async (name: string, graph: OnnxGraph | Uint8Array, extra: Partial<VariantReport> = {}) => {
    const bytes = graph instanceof Uint8Array ? graph : graph.toBytes();
    const file = join(options.outDir, `${stem}.${name}.onnx`);
    writeFileSync(file, bytes);
    const comparison = others.some((o) => o.name === name);
    // visionpipe's own variants only: another export (--compare) may name its input and output otherwise.
    if (!comparison) writeVariantDescriptor(subject, name, file);
    const run = name === 'fp32' ? reference : await runFrames(bytes, evaluation, dims, 0);
    const v: VariantReport = { name, file, ...compare(run.outputs, run.ms, bytes.byteLength), ...extra };
    if (name.startsWith('int8') || comparison) v.coverage = await integerCoverage(bytes, join(options.outDir, `${stem}.${name}.optimized.onnx`));
    log.info({ variant: name, agreement: v.agreement }, 'variant scored');
    variants.push(v);
    timed.push(onnxVariant(name, file, dims));
    return v;
  };

  await measure('fp32', fp32Bytes);
  if (spec.layout === 'nhwc') {
    try {
      const file = join(options.outDir, `${stem}.opencv-dnn-nchw.onnx`);
      const nchw = withNchwInput(fp32).toBytes();
      const [w, h] = spec.inputWh;
      const run = await runFramesOpenCv(nchw, file, evaluation, [h, w]);
      const v: VariantReport = { name: 'opencv-dnn-fp32', file, ...compare(run.outputs, run.ms, nchw.byteLength) };
      log.info({ variant: v.name, agreement: v.agreement }, 'variant scored');
      variants.push(v);
      timed.push(openCvVariant(v.name, file, [h, w]));
    } catch (err) {
      log.warn({ reason: err instanceof Error ? err.message : String(err) }, 'OpenCV DNN could not run the fp32 model; its row is left out');
    }
  }
  for (const { name, graph } of others) await measure(name, graph);
  await measure('fp16-weights', fp16Weights(fp32));
  const ranges = await calibrateAll(fp32, calibration, dims);
  // Which range rule (and below, whether equalization) the later steps build on is decided on the calibration frames
  // too: the held-out frames only measure.
  const byMethod: Array<[CalibrationMethod, VariantReport, number, OnnxGraph]> = [];
  for (const m of ['minmax', 'percentile', 'mse'] as const) {
    const g = await quantizeQdq(fp32, { calibration, dims, method: m, ranges });
    byMethod.push([m, await measure(`int8-${m}`, g, { method: m }), await searchAgreementOf(g), g]);
  }
  const [method, bestInt8, bestInt8Search, bestInt8Graph] = byMethod.reduce((a, b) => (b[2] > a[2] ? b : a));
  // Data-free fixes for depthwise-separable networks, on top of the best range rule so far: cross-layer
  // equalization, then equalization + bias correction (Nagel et al. 2019).
  const { graph: equalized, pairs } = equalizeCrossLayer(fp32);
  // What a mixed-precision search starts from: the equalized graph when equalization helped (it computes the same
  // numbers in float, so fp32's answers stay the reference).
  // `quantized`: its fully int8 variant (what the per-node profile compares float with).
  let mixedBase = { graph: fp32, ranges, label: method as string, quantized: bestInt8Graph };
  if (pairs > 0) {
    const eqRanges = await calibrateAll(equalized, calibration, dims);
    const quantizeEq = (g: OnnxGraph) => quantizeQdq(g, { calibration, dims, method, ranges: eqRanges });
    const eqGraph = await quantizeEq(equalized);
    await measure('int8-equalized', eqGraph, { method: `${method} + equalization (${pairs} Conv chains)` });
    if ((await searchAgreementOf(eqGraph)) > bestInt8Search) mixedBase = { graph: equalized, ranges: eqRanges, label: `${method} + equalization`, quantized: eqGraph };
    const corrected = await correctBias(equalized, quantizeEq, calibration, dims);
    await measure('int8-equalized-bias-corrected', corrected.quantized, { method: `${method} + equalization + bias correction (${corrected.layers} Convs)` });
  } else {
    const corrected = await correctBias(fp32, (g) => quantizeQdq(g, { calibration, dims, method, ranges }), calibration, dims);
    await measure('int8-bias-corrected', corrected.quantized, { method: `${method} + bias correction (${corrected.layers} Convs)` });
  }
  let precisionSweep: PrecisionPoint[] | undefined;
  let mixedFrontier: OptimizeReport['mixedFrontier'];
  if (bestInt8.agreement < budget) {
    const computeCount = computeNodes(fp32).length;
    if (computeCount <= MIXED_SEARCH_MAX_NODES && subject.output !== 'boxes') {
      const mixed = await mixedPrecision(mixedBase.graph, { calibration, dims, method, ranges: mixedBase.ranges }, computeCount, searchAgreementOf, budget);
      if (mixed !== null) await measure('int8-mixed', mixed.graph, { floatNodes: mixed.floatNodes });
      else log.info({ computeNodes: computeCount }, 'keeping half of the layers in float still misses the budget; no int8-mixed variant');
    } else {
      // Three calibration frames far apart (each costs one run per tensor): enough to rank, not to average the clip.
      const frames = [0, 1, 2].map((k) => calibration[Math.floor((k * calibration.length) / 3)]!);
      const frameError = (ref: Float32Array, out: Float32Array) =>
        subject.output === 'boxes'
          ? 1 - scoreDetections([ref], [out], [0], 0, minScore).agreement
          : subject.output === 'logits'
            ? score([softmax(ref)], [softmax(out)], [0], 0).meanAbsProbDiff!
            : score([ref], [out], [0], 0).meanAbsProbDiff!;
      // What int8 saves node by node on this CPU (onnxruntime's profiler, the float and the fully int8 model on the
      // same frames): a ranking by milliseconds instead of MACs (on CenterNet some high-resolution Convs and the
      // Resizes run slower in int8 than in float).
      const prepared = prepareForQuantization(mixedBase.graph);
      const [fp32Profile, int8Profile] = await profileKernels([prepared.toBytes(), mixedBase.quantized.toBytes()], frames, dims);
      const [fp32Kernels, int8Kernels] = [attributeKernels(fp32Profile!, prepared), attributeKernels(int8Profile!, prepared)];
      const timing = { fp32MsByNode: fp32Kernels.msByNode, int8MsByNode: int8Kernels.msByNode, conversionMsPerElement: await conversionMsPerElement() };
      // Nodes in both profiles, as the search counts them (see sensitivityGuidedMixed).
      const slower = [...timing.int8MsByNode].filter(([n, ms]) => timing.fp32MsByNode.has(n) && ms > timing.fp32MsByNode.get(n)!);
      const sum = (m: Iterable<number>) => [...m].reduce((a, b) => a + b, 0);
      log.info(
        {
          fp32NodeMs: sum(timing.fp32MsByNode.values()),
          int8NodeMs: sum(timing.int8MsByNode.values()),
          unattributedMs: { fp32: fp32Kernels.unattributedMs, int8: int8Kernels.unattributedMs },
          slowerInInt8: slower.length,
          msLostThere: sum(slower.map(([n, ms]) => ms - timing.fp32MsByNode.get(n)!)),
          conversionNsPerElement: 1e6 * timing.conversionMsPerElement,
        },
        'per-node kernel times profiled',
      );
      const mixed = await sensitivityGuidedMixed(mixedBase.graph, { calibration, dims, method, ranges: mixedBase.ranges }, searchAgreementOf, budget, frames, frameError, log, timing);
      mixedFrontier = { candidates: mixed.candidates, points: mixed.frontier };
      // Every order's fewest-float variant that met the budget is measured (the one with fewest float tensors as
      // int8-mixed; another order's as int8-mixed-by-sensitivity or -by-graph-order): fewer float tensors is not
      // faster by itself, and the pick rule times them side by side.
      const mixedMethod = (p: { floatLayers: FloatLayer[]; order: string }, met: boolean) =>
        `${mixedBase.label}; ${p.floatLayers.length} of ${mixed.candidates} tensors float, ${p.order}${met ? '' : ' (misses the budget)'}`;
      const points = mixed.budgetMet.length > 0 ? mixed.budgetMet : [{ order: mixed.order, graph: mixed.graph, floatLayers: mixed.floatLayers, agreement: mixed.agreement }];
      for (const [i, p] of points.entries()) {
        const name = i === 0 ? 'int8-mixed' : `int8-mixed-by-${MIXED_ORDER_SUFFIX[p.order]}`;
        await measure(name, p.graph, { floatLayers: p.floatLayers, method: mixedMethod(p, mixed.metBudget) });
        // On x86 without VNNI the weights are stored as uint8 (u8 × u8: exact, but onnxruntime's slower kernel).
        // The same mixed variant with int8 weights runs the faster u8 × s8 kernel, whose 16-bit pair sums can
        // saturate on large activations: measured beside it, so the pick rule decides on this machine (on CenterNet
        // with the first 15 tensors float: 95.0 % box F1 at 1.12x fp32, against 95.1 % at 1.03x with uint8 weights).
        if (mixed.metBudget && integerWeightTypeForThisCpu() === 'uint8') {
          const floatTensors = new Set(p.floatLayers.map((l) => l.tensor));
          const signed = await quantizeQdq(mixedBase.graph, { calibration, dims, method, ranges: mixedBase.ranges, floatTensors, weightType: 'int8' });
          await measure(`${name}-s8`, signed, { floatLayers: p.floatLayers, method: `${mixedMethod(p, true)}; int8 weights (u8 × s8 kernel)` });
        }
      }
    }
    precisionSweep = [{ bits: 8, agreement: bestInt8.agreement }];
    for (const bits of [10, 12, 14, 16]) {
      const agreement = await agreementOf(await quantizeQdq(fp32, { calibration, dims, method, ranges, simulateBits: bits }));
      precisionSweep.push({ bits, agreement });
      log.info({ bits, agreement }, 'simulated precision');
      if (agreement >= budget) break;
    }
    for (const only of ['weights', 'activations'] as const) {
      const agreement = await agreementOf(await quantizeQdq(fp32, { calibration, dims, method, ranges, simulateBits: 8, simulateOnly: only }));
      precisionSweep.push({ bits: 8, only, agreement });
      log.info({ bits: 8, only, agreement }, 'simulated precision');
    }
  }

  log.info({ variants: timed.length }, 'timing the variants side by side');
  const latencies = await timeAlternating(timed, evaluation);
  for (const v of variants) Object.assign(v, latencyOf(latencies.get(v.name) ?? []));
  const latencyRunsPerVariant = latencies.get('fp32')?.length ?? 0;

  const picked = pickVariant(variants, budget);
  const fp32Ms = variants[0]!.meanMs;
  const report: OptimizeReport = {
    model: options.model,
    clip: options.clip,
    ...(options.evalClip === undefined ? {} : { evalClip: options.evalClip }),
    task: subject.task,
    metric: variants[0]!.metric,
    budget,
    calibrationFrames: calibration.length,
    evalFrames: evaluation.length,
    variants,
    latencyRunsPerVariant,
    picked: picked.name,
    speedupVsFp32: fp32Ms / picked.meanMs,
    ...(precisionSweep === undefined ? {} : { precisionSweep }),
    ...(mixedFrontier === undefined ? {} : { mixedFrontier }),
  };
  writeFileSync(join(options.outDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(options.outDir, 'report.md'), formatReport(report));
  await drawSpeedAgreementChart(variants, budget, report.metric === 'box-f1' ? 'box F1 agreement with fp32' : 'top-1 agreement with fp32', join(options.outDir, 'chart.png'));
  return report;
}

/**
 * `--compare` files, imported before any frame is read (a wrong path or another network fails at once): same input
 * as the model being optimized, first output only, each under a unique variant name.
 */
async function importComparisons(files: readonly string[], fp32: OnnxGraph): Promise<Array<{ name: string; graph: OnnxGraph }>> {
  const out: Array<{ name: string; graph: OnnxGraph }> = [];
  for (const file of files) {
    if (!existsSync(file)) throw new VisionpipeError('VP_MODEL_NOT_FOUND', 'A --compare model file does not exist', { value: file, hint: 'Check the path given to --compare.' });
    const graph = /\.onnx$/i.test(file) ? readOnnxGraph(readFileSync(file), basename(file)) : await importModel(file);
    if (JSON.stringify(graph.inputs[0]?.dims) !== JSON.stringify(fp32.inputs[0]?.dims)) {
      throw new VisionpipeError('VP_MODEL_SHAPE_MISMATCH', `--compare ${basename(file)} takes another input than the model being optimized`, {
        value: graph.inputs[0]?.dims,
        expected: `[${fp32.inputs[0]?.dims.join(', ')}] (the same network)`,
      });
    }
    graph.outputs = graph.outputs.slice(0, 1);
    const base = `${/\.tflite$/i.test(file) ? 'tflite' : 'file'}-${basename(file).replace(/\.[^.]+$/, '')}`;
    let name = base;
    for (let i = 2; out.some((o) => o.name === name); i++) name = `${base}-${i}`;
    out.push({ name, graph });
  }
  return out;
}

/**
 * The fastest variant within the budget that the onnx engine runs (OpenCV DNN is there for comparison). Variants
 * within 5 % of the fastest are equally fast (e.g. the two int8 variants share one graph shape): the more accurate
 * of those wins — fp32 among them (agreement 1) included, since 5 % is measurement noise, not a reason to give up
 * exactness. `variants[0]` is fp32.
 */
export function pickVariant(variants: readonly VariantReport[], budget: number): VariantReport {
  const fp32 = variants[0]!;
  const within = variants.filter((v) => v.agreement >= budget && !v.name.startsWith('opencv'));
  const fastestMs = Math.min(fp32.meanMs, ...within.map((v) => v.meanMs));
  const near = within.filter((v) => v.meanMs <= 1.05 * fastestMs);
  const best = near.reduce((a, v) => (v.agreement > a.agreement || (v.agreement === a.agreement && v.meanMs < a.meanMs) ? v : a), near[0] ?? fp32);
  return best.meanMs < 0.95 * fp32.meanMs ? best : fp32;
}

function softmax(logits: Float32Array): Float32Array {
  const max = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/**
 * Keeps the compute nodes whose quantization costs the most agreement in float, one at a time (most sensitive
 * first), until the variant meets the budget. Null if keeping half of them float cannot meet it.
 */
async function mixedPrecision(
  fp32: OnnxGraph,
  base: Omit<QuantizeOptions, 'keepFloat'>,
  computeCount: number,
  agreementOf: (g: OnnxGraph) => Promise<number>,
  budget: number,
) {
  const quantize = (floatSet: Set<number>) => quantizeQdq(fp32, { ...base, keepFloat: (_n, i) => floatSet.has(i) });
  const gains: Array<[number, number]> = [];
  for (let i = 0; i < computeCount; i++) gains.push([i, await agreementOf(await quantize(new Set([i])))]);
  gains.sort((a, b) => b[1] - a[1]);
  const floatSet = new Set<number>();
  for (const [i] of gains) {
    floatSet.add(i);
    const g = await quantize(floatSet);
    if ((await agreementOf(g)) >= budget) return { graph: g, floatNodes: floatSet.size };
    if (floatSet.size >= computeCount / 2) break;
  }
  return null;
}

/** Calibration frames spread over the first half of the clip, evaluation frames over the second half. */
export async function sampleFrames(clip: string, spec: PreprocessSpec, calibrationCount: number, evalCount: number) {
  const [calibration, evaluation] = await spreadFrames(clip, spec, [
    [0, 0.5, calibrationCount],
    [0.5, 1, evalCount],
  ]);
  return { calibration: calibration!, evaluation: evaluation! };
}

/**
 * For each [from, to, count] (fractions of the clip's length), `count` preprocessed frames spread evenly over that
 * part of the clip. Each part must give at least one frame.
 */
async function spreadFrames(clip: string, spec: PreprocessSpec, parts: Array<[number, number, number]>): Promise<Float32Array[][]> {
  const { capture: cap, first } = await openVideoFile(clip);
  const total = Math.max(2, Math.round(cap.get(cv.CAP_PROP_FRAME_COUNT)));
  // Short gaps are read through (seeking decodes from the previous keyframe anyway); long ones are seeked.
  let next = 1;
  let pending: Mat | null = first;
  const frameAt = async (i: number) => {
    if (pending !== null) {
      if (i === 0) {
        const frame = pending;
        pending = null;
        return frame;
      }
      pending.release();
      pending = null;
    }
    if (i < next || i - next > 32) {
      cap.set(cv.CAP_PROP_POS_FRAMES, i);
      next = i;
    }
    for (; next < i; next++) (await cap.readAsync()).release();
    next++;
    return cap.readAsync();
  };
  const take = async (from: number, to: number, count: number) => {
    const out: Float32Array[] = [];
    const step = Math.max(1, Math.floor((to - from) / count));
    for (let i = from; i < to && out.length < count; i += step) {
      const frame = await frameAt(i);
      if (frame.empty) break;
      const buffer = new ArrayBuffer(inputByteLength(spec));
      await preprocessInto(frame, spec, buffer);
      frame.release();
      out.push(new Float32Array(buffer));
    }
    return out;
  };
  try {
    const out: Float32Array[][] = [];
    for (const [from, to, count] of parts) {
      const frames = await take(Math.floor(from * total), Math.floor(to * total), count);
      if (frames.length === 0) throw new VisionpipeError('VP_SOURCE_UNREADABLE', 'The clip gave no frames to calibrate or evaluate on', { value: clip });
      out.push(frames);
    }
    return out;
  } finally {
    pending?.release();
    cap.release();
  }
}

const pct = (x: number | undefined) => (x === undefined ? '' : `${(100 * x).toFixed(1)} %`);

export function formatReport(r: OptimizeReport): string {
  const fp32Ms = r.variants[0]!.meanMs;
  const detector = r.metric === 'box-f1';
  const header = detector
    ? '| variant | box F1 vs fp32 (IoU ≥ 0.5) | fp32 boxes kept (IoU ≥ 0.9, Δscore ≤ 0.02) | mean IoU | mean abs score diff | mean ms | p99 ms | speed vs fp32 | size | notes |'
    : '| variant | top-1 agreement | … where fp32 is confident (margin ≥ 0.1) | mean abs prob diff | mean ms | p99 ms | speed vs fp32 | size | notes |';
  const rows = r.variants.map((v) => {
    const name = v.name === r.picked ? `**${v.name}**` : v.name;
    const quality = detector
      ? [pct(v.agreement), pct(v.boxes?.sameWithinTolerance), (v.boxes?.meanIou ?? 0).toFixed(3), (v.boxes?.meanAbsScoreDiff ?? 0).toFixed(4)]
      : [pct(v.agreement), pct(v.top1AgreementConfident), (v.meanAbsProbDiff ?? 0).toExponential(2)];
    const coverage = v.coverage === undefined || v.coverage.integerKernels === 0 ? undefined : `onnxruntime runs ${v.coverage.integerKernels} integer kernels, ${v.coverage.quantize} Q / ${v.coverage.dequantize} DQ left`;
    const notes = [v.method, v.floatNodes === undefined ? undefined : `${v.floatNodes} float nodes`, coverage].filter((n) => n !== undefined).join('; ');
    return `| ${[name, ...quality, v.meanMs.toFixed(2), v.p99Ms.toFixed(2), `${(fp32Ms / v.meanMs).toFixed(2)}x`, `${(v.sizeBytes / 1024).toFixed(0)} KiB`, notes].join(' | ')} |`;
  });
  const sweep =
    r.precisionSweep === undefined
      ? []
      : [
          '',
          '## How many bits this model needs on this clip',
          '',
          `No fully int8 variant met the budget. The same quantization (same layers, same calibrated ranges) simulated in float at more bits:`,
          '',
          '| bits | agreement with fp32 |',
          '|---|---|',
          ...r.precisionSweep.map((p) => `| ${precisionLabel(p)} | ${pct(p.agreement)} |`),
          '',
          r.precisionSweep.some((p) => p.only === undefined && p.agreement >= r.budget)
            ? `The budget needs about ${r.precisionSweep.find((p) => p.only === undefined && p.agreement >= r.budget)!.bits} bits: int8 rounding noise itself, not the range calibration, is what moves this model's answers on this footage.`
            : 'Even 16 bits miss the budget here.',
          ...lossSplit(r.precisionSweep),
          detector
            ? 'Boxes whose score sits near the threshold, and overlapping boxes, change first; a looser budget or fp16 weights are the options.'
            : 'Frames where fp32 itself barely prefers one answer flip first (see the confident-frames column); a looser budget or fp16 weights are the options.',
        ];
  const mixed = r.variants.find((v) => v.name === r.picked && v.floatLayers !== undefined) ?? r.variants.find((v) => v.floatLayers !== undefined);
  const mixedSection =
    mixed === undefined || r.mixedFrontier === undefined
      ? []
      : [
          '',
          '## Mixed precision: which tensors stay float, and why',
          '',
          `Each of ${r.mixedFrontier.candidates} quantized tensors was rounded alone (8 bits, simulated) on three calibration frames. Its error — the disagreement with fp32 at the model's output`,
          `(${detector ? '1 − box F1' : 'mean |Δp|'}), plus a thousandth of the squared error over variance where the quantized span ends, to order ties — divided by the int8 work it enables`,
          '(MACs of its producer and consumers) ranks it. That ranking and graph order from the input (errors compound with depth) were tried with half the tensors float;',
          'in each order meeting the budget there, the shortest prefix still meeting it was searched by bisection and the shorter kept (below the budget: the better order up to three quarters).',
          "A third order ranks by milliseconds instead of MACs (onnxruntime's profiler, float and int8 node by node on this CPU, plus the Q / DQ a float island adds):",
          'first the tensors whose nodes run slower in int8 by more than those conversions (all of them are kept float), then error per ms saved up to half the tensors.',
          `The search measures agreement on the ${r.calibrationFrames} calibration frames (below), never on the held-out ones; every order that met the budget there was`,
          'scored on the held-out frames and timed as a variant above:',
          '',
          '| order | tensors in float | agreement with fp32 (calibration frames) |',
          '|---|---|---|',
          ...r.mixedFrontier.points.map((p) => `| ${p.order} | ${p.floatTensors} | ${pct(p.agreement)} |`),
          '',
          `\`${mixed.name}\` keeps ${mixed.floatLayers!.length} in float${mixed.floatLayers!.length > 20 ? ' (the first 20 shown)' : ''}:`,
          '',
          '| tensor | produced by | error alone | float MMAC / frame | ms int8 saves there (profiled) | ms its Q / DQ would cost alone |',
          '|---|---|---|---|---|---|',
          ...mixed.floatLayers!.slice(0, 20).map((l) => `| \`${l.tensor}\` | ${l.producer} | ${l.error.toExponential(2)} | ${l.mmacs.toFixed(1)} | ${l.savedMs === undefined ? '—' : l.savedMs.toFixed(3)} | ${l.boundaryMs === undefined ? '—' : l.boundaryMs.toFixed(3)} |`),
        ];
  return [
    `# visionpipe optimize: ${basename(r.model)}`,
    '',
    r.evalClip === undefined
      ? `Calibrated on ${r.calibrationFrames} frames and evaluated on ${r.evalFrames} other frames of \`${basename(r.clip)}\`, on this machine (onnxruntime CPU, batch 1).`
      : `Calibrated on ${r.calibrationFrames} frames of \`${basename(r.clip)}\` and evaluated on ${r.evalFrames} frames of another clip, \`${basename(r.evalClip)}\`, on this machine (onnxruntime CPU, batch 1).`,
    `Latency: all variants timed side by side, in alternating rounds over the same frames (${r.latencyRunsPerVariant} runs each).`,
    `Accuracy budget: ${detector ? 'box F1 agreement' : 'top-1 agreement'} with fp32 ≥ ${(100 * r.budget).toFixed(1)} %. Picked: **${r.picked}** (${r.speedupVsFp32.toFixed(2)}x fp32's speed).`,
    '',
    header,
    `|${'---|'.repeat(header.split('|').length - 2)}`,
    ...rows,
    ...sweep,
    ...mixedSection,
    '',
    '![speed vs agreement](chart.png)',
    '',
  ].join('\n');
}

function precisionLabel(p: PrecisionPoint): string {
  if (p.only === 'weights') return `${p.bits} (weights only, activations float)`;
  if (p.only === 'activations') return `${p.bits} (activations only, weights float)`;
  return `${p.bits}${p.bits === 8 ? ' (the int8 variant)' : ''}`;
}

/** Which rounding — weights' or activations' — costs more, from the two single-sided 8-bit rows. */
function lossSplit(sweep: PrecisionPoint[]): string[] {
  const w = sweep.find((p) => p.only === 'weights');
  const a = sweep.find((p) => p.only === 'activations');
  if (w === undefined || a === undefined) return [];
  const kept = `Rounding only the weights keeps ${(100 * w.agreement).toFixed(1)} %, only the activations ${(100 * a.agreement).toFixed(1)} %`;
  if (Math.abs(w.agreement - a.agreement) < 0.005) return [`${kept}: both lose about the same here.`];
  return [`${kept}: the ${w.agreement < a.agreement ? 'weights' : 'activations'} lose more here.`];
}
