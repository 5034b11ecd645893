import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { onnx as OnnxNs } from 'onnx-proto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { VisionpipeError } from '../errors.js';
import type { ModelDescriptor } from './descriptor-schema.js';
import { kerasToOnnx } from './keras/keras-to-onnx.js';
import { readKerasH5 } from './keras/read-keras-h5.js';
import { readOnnxGraph, type OnnxGraph } from './onnx/onnx-graph.js';
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

/** Where converted models are cached between runs. */
export const MODEL_CACHE_DIR = join(tmpdir(), 'visionpipe-models');

/**
 * A file derived from a model file, made once and cached: keyed by the source's path, size and time plus `variant`.
 * `make` writes a per-process partial file, renamed into place (atomic), so concurrent first runs cannot collide.
 */
export async function cachedModelFile(source: string, name: string, variant: string, cacheDir: string, make: (partial: string) => Promise<unknown>): Promise<string> {
  const st = statSync(source);
  const key = createHash('sha256').update(`${source}|${st.size}|${st.mtimeMs}|${variant}`).digest('hex').slice(0, 16);
  const file = join(cacheDir, `${name}-${key}.onnx`);
  if (!existsSync(file)) {
    mkdirSync(cacheDir, { recursive: true });
    const partial = `${file}.${process.pid}.partial`;
    await make(partial);
    renameSync(partial, file);
  }
  return file;
}
