import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { onnx as OnnxNs } from 'onnx-proto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { VisionpipeError, messageOf } from '../errors.js';
import type { ModelDescriptor } from './descriptor-schema.js';
import type { OnnxOptions } from '../config/schema.js';
import { sessionThreads } from '../inference/onnx-engine.js';
import { kerasToOnnx } from './keras/keras-to-onnx.js';
import { readKerasH5 } from './keras/read-keras-h5.js';
import { DataType, readOnnxGraph, type OnnxGraph } from './onnx/onnx-graph.js';
import { withDynamicBatch, type BatchPlan } from './onnx/dynamic-batch.js';
import { PIXELS_INPUT, withPixelPrologue } from './onnx/pixel-prologue.js';

const { onnx: onnxProto } = createRequire(import.meta.url)('onnx-proto') as { onnx: typeof OnnxNs };
import { readTfjsGraph } from './tfjs/read-tfjs-graph.js';
import { readTfliteFile } from './tflite/read-tflite.js';
import { integerWeightTypeForThisCpu, TFLITE_CONVERTER_VERSION, tfliteToOnnx, type IntegerWeightType } from './tflite/tflite-to-onnx.js';
import { tfjsToOnnx } from './tfjs/tfjs-to-onnx.js';

/**
 * Imports a Keras .h5, a TF.js graph model.json or a TFLite .tflite file into an ONNX graph. `int8Weights`: how a
 * quantized TFLite model's weights are stored (default: what this CPU runs exactly, see integerWeightTypeForThisCpu).
 */
export async function importModel(path: string, outputName?: string, int8Weights?: IntegerWeightType): Promise<OnnxGraph> {
  if (/\.h5$|\.hdf5$|\.keras$/i.test(path)) return kerasToOnnx(await readKerasH5(path)).graph;
  if (/\.tflite$/i.test(path)) return tfliteToOnnx(readTfliteFile(path), basename(path), int8Weights, outputName).graph;
  if (path.endsWith('.json')) {
    const tf = readTfjsGraph(path);
    return tfjsToOnnx(outputName === undefined ? tf : { ...tf, outputs: [outputName] }).graph;
  }
  throw new VisionpipeError('VP_MODEL_UNSUPPORTED', 'Cannot convert this kind of model file', {
    value: path,
    expected: 'a Keras .h5, a TF.js graph model.json or a TFLite .tflite file',
  });
}

/** `visionpipe convert`: writes the ONNX file; returns its size in bytes. */
export async function convertModel(path: string, out: string, outputName?: string, int8Weights?: IntegerWeightType): Promise<number> {
  const bytes = (await importModel(path, outputName, int8Weights)).toBytes();
  writeFileSync(out, bytes);
  return bytes.byteLength;
}

/**
 * The onnx engine on a TF.js graph or TFLite descriptor: converts the model once and caches the ONNX file (keyed by
 * the model file's path, size and time, and for TFLite the integer weight type this CPU wants), returning a
 * descriptor that points at it.
 */
export async function asOnnxDescriptor(d: ModelDescriptor, cacheDir = MODEL_CACHE_DIR): Promise<ModelDescriptor> {
  if (d.format === 'onnx') return d;
  let file: string;
  if (d.format === 'tflite') {
    const weights = integerWeightTypeForThisCpu();
    const key = `tflite|${weights}|${d.output.name ?? ''}|v${TFLITE_CONVERTER_VERSION}`;
    file = await cachedModelFile(d.modelPath, d.name, key, cacheDir, async (partial) => writeFileSync(partial, tfliteToOnnx(readTfliteFile(d.modelPath), d.name, weights, d.output.name).graph.toBytes()));
  } else if (d.format === 'tfjs-graph') {
    file = await cachedModelFile(d.modelPath, d.name, `${d.output.name ?? ''}|v1`, cacheDir, (partial) => convertModel(d.modelPath, partial, d.output.name));
  } else {
    throw new VisionpipeError('VP_ENGINE_UNAVAILABLE', `The onnx engine cannot run a ${d.format} model ("${d.name}")`, {
      value: 'onnx',
      expected: 'engine tfjs for TF.js layers models',
    });
  }
  // Both converters name the graph's input `input` and its output `output`.
  return Object.freeze({ ...d, format: 'onnx', modelPath: file, input: { ...d.input, name: 'input' }, output: { ...d.output, name: 'output' } });
}

/**
 * The onnx engine fed uint8 pixels: the model gets a pixel prologue (see withPixelPrologue: scale, mean / std and
 * layout inside the graph), written once and cached like a conversion, and the returned descriptor asks
 * preprocessing only for the resized frame's bytes in the model's channel order. Throws when the model cannot take
 * one (its input is not a 4-D float with 3 channels, the graph writer would drop part of it, or the file's opset is
 * older than the graph reader takes): the caller keeps the float path then.
 */
export async function asPixelInputDescriptor(d: ModelDescriptor, cacheDir = MODEL_CACHE_DIR): Promise<ModelDescriptor> {
  if (d.format !== 'onnx') throw new VisionpipeError('VP_MODEL_UNSUPPORTED', `A pixel prologue is added to ONNX models; "${d.name}" is ${d.format}`, { value: d.format });
  if (d.input.dtype !== 'float32') return d;
  const p = d.preprocess;
  const variant = `pixels|${d.input.name ?? ''}|${d.input.layout}|${p.scale}|${p.mean.join(',')}|${p.std.join(',')}|v2`;
  const file = await cachedModelFile(d.modelPath, d.name, variant, cacheDir, async (partial) => {
    const bytes = readFileSync(d.modelPath);
    refuseWhatTheWriterDrops(bytes, d.modelPath);
    const graph = readOnnxGraph(bytes, d.name);
    writeFileSync(partial, withPixelPrologue(graph, d.input.name, { layout: d.input.layout, pixelFormat: p.pixelFormat, scale: p.scale, mean: p.mean, std: p.std }).toBytes());
  });
  return Object.freeze({
    ...d,
    modelPath: file,
    input: { ...d.input, name: PIXELS_INPUT, dtype: 'uint8' as const, layout: 'nhwc' as const },
    preprocess: { ...p, scale: 1, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] },
  });
}

/** How far a batched model's outputs may be from the original's, relative to each output's largest value. */
export const BATCH_TOLERANCE = 1e-4;
/** A batch size is used only if it makes each image at least this much cheaper than running it alone. */
export const BATCH_MIN_GAIN = 0.9;

/** A model that takes a batch, and the batch size worth using on this machine. */
export interface BatchedModel {
  modelPath: string;
  /** The largest batch size (≤ the one asked for) that made each image ≥ 10 % cheaper here; 1 = batching does not pay. */
  maxBatch: number;
  /** Measured inference time per image at each batch size tried, ms. */
  perImageMs: Record<string, number>;
  plan: BatchPlan;
}

/**
 * The model (an ONNX descriptor, usually after asPixelInputDescriptor) rewritten to take a batch (withDynamicBatch),
 * written once and cached. Before it is cached, the batched model runs three test images in one call and must match
 * the original run on each alone (BATCH_TOLERANCE), and it is timed at batch sizes 1, 2, 4… up to `maxBatch` on this
 * machine: batching pays for small models (per-call overhead) and may not for large images, where each image alone
 * already fills the caches. The cache key includes the CPU model, so a different machine measures again. A model that
 * cannot take a batch, or whose rewrite does not match, throws VP_MODEL_UNSUPPORTED and the caller keeps batch 1.
 */
export async function asBatchedModel(d: ModelDescriptor, maxBatch: number, onnxOptions: Partial<OnnxOptions> = {}, cacheDir = MODEL_CACHE_DIR): Promise<BatchedModel> {
  if (d.format !== 'onnx') throw new VisionpipeError('VP_MODEL_UNSUPPORTED', `Batching rewrites ONNX models; "${d.name}" is ${d.format}`, { value: d.format });
  const sizes = [...new Set([1, 2, 4, 8, 16].filter((n) => n < maxBatch).concat(maxBatch))];
  const cpu = cpus()[0]?.model ?? 'cpu';
  const variant = `batch|${d.input.name ?? ''}|${sizes.join(',')}|${cpu}|${onnxOptions.intraOpThreads ?? ''}|v3`;
  // A model found unable to take a batch is remembered too, so later starts do not probe it again.
  const refusedPath = `${cachedModelPath(d.modelPath, d.name, variant, cacheDir)}.refused`;
  if (existsSync(refusedPath)) throw new VisionpipeError('VP_MODEL_UNSUPPORTED', readFileSync(refusedPath, 'utf8'), { value: d.modelPath, hint: `Decided earlier (${refusedPath}); it keeps batch 1.` });
  const file = await cachedModelFile(d.modelPath, d.name, variant, cacheDir, async (partial) => {
    try {
      await makeBatched(partial);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'VP_MODEL_UNSUPPORTED') {
        mkdirSync(cacheDir, { recursive: true });
        writeFileSync(refusedPath, messageOf(err));
      }
      throw err;
    }
  });
  const record = JSON.parse(readFileSync(`${file}.json`, 'utf8')) as Omit<BatchedModel, 'modelPath'>;
  return { modelPath: file, ...record };

  async function makeBatched(partial: string): Promise<void> {
    const bytes = readFileSync(d.modelPath);
    refuseWhatTheWriterDrops(bytes, d.modelPath);
    const graph = readOnnxGraph(bytes, d.name);
    const input = graph.inputs[0];
    if (input === undefined || graph.inputs.length !== 1) throw new VisionpipeError('VP_MODEL_UNSUPPORTED', 'The model cannot take a batch: it needs exactly one input', { value: d.modelPath });
    const dims = input.dims.map((x) => x ?? 1);
    // onnxruntime on the main thread, once per model and machine: loaded only here, so other commands do not pay for it.
    const { batchDifference, probeGraph, testImage, timePerImage } = await import('./onnx/probe-graph.js');
    // A model that already declares a dynamic batch is taken at its word, after the same check.
    const { graph: batched, plan } =
      input.dims[0] === null
        ? { graph, plan: { batchedNodes: graph.nodes.length, perImageNodes: 0, firstPerImage: null } }
        : withDynamicBatch(graph, await probeGraph(graph, testImage(dims, input.dataType ?? DataType.FLOAT)));
    const worst = await batchDifference(graph, batched, [0, 1, 2].map((seed) => testImage(dims, input.dataType ?? DataType.FLOAT, seed)));
    if (!(worst <= BATCH_TOLERANCE)) {
      throw new VisionpipeError('VP_MODEL_UNSUPPORTED', `The batched model does not match the original (${worst.toExponential(1)} apart, relative)`, {
        value: d.modelPath,
        expected: `outputs within ${BATCH_TOLERANCE} of running each image alone`,
        hint: 'It keeps batch 1. Please report the model: the batching rewrite misjudged one of its ops.',
      });
    }
    const perImage = await timePerImage(batched, sizes, sessionThreads({ spinWait: false, ...onnxOptions }));
    const alone = perImage.get(1)!;
    const best = Math.max(...sizes.filter((n) => perImage.get(n)! <= BATCH_MIN_GAIN * alone));
    const record: Omit<BatchedModel, 'modelPath'> = { maxBatch: Number.isFinite(best) ? best : 1, perImageMs: Object.fromEntries(perImage), plan };
    writeFileSync(`${partial}.json`, JSON.stringify(record));
    renameSync(`${partial}.json`, `${partial.replace(/\.\d+\.partial$/, '')}.json`);
    writeFileSync(partial, batched.toBytes());
  }
}

/** The graph writer carries nodes, initializers, inputs, outputs and opsets only: models with more keep their float input. */
function refuseWhatTheWriterDrops(bytes: Uint8Array, path: string): void {
  const model = onnxProto.ModelProto.decode(bytes);
  const functions = model.functions?.length ?? 0;
  const sparse = model.graph?.sparseInitializer?.length ?? 0;
  const external = (model.graph?.initializer ?? []).some((t) => (t.externalData?.length ?? 0) > 0);
  if (functions > 0 || sparse > 0 || external) {
    throw new VisionpipeError('VP_MODEL_UNSUPPORTED', 'The model has local functions, sparse or external initializers, which the pixel prologue would not carry over', { value: path });
  }
}

/** Where cachedModelFile keeps the file derived from `source` for `variant`. */
export function cachedModelPath(source: string, name: string, variant: string, cacheDir: string): string {
  const st = statSync(source);
  const key = createHash('sha256').update(`${source}|${st.size}|${st.mtimeMs}|${variant}`).digest('hex').slice(0, 16);
  return join(cacheDir, `${name}-${key}.onnx`);
}

/** Where converted models are cached between runs. */
export const MODEL_CACHE_DIR = join(tmpdir(), 'visionpipe-models');

/**
 * A file derived from a model file, made once and cached: keyed by the source's path, size and time plus `variant`.
 * `make` writes a per-process partial file, renamed into place (atomic), so concurrent first runs cannot collide.
 */
export async function cachedModelFile(source: string, name: string, variant: string, cacheDir: string, make: (partial: string) => Promise<unknown>): Promise<string> {
  const file = cachedModelPath(source, name, variant, cacheDir);
  if (!existsSync(file)) {
    mkdirSync(cacheDir, { recursive: true });
    const partial = `${file}.${process.pid}.partial`;
    await make(partial);
    renameSync(partial, file);
  }
  return file;
}
