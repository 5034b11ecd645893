import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { stringify } from 'yaml';
import { VisionpipeError } from '../../errors.js';
import { inputDims, preprocessSpecOf, type PreprocessSpec } from '../../preprocess/preprocess-frame.js';
import { importModel } from '../convert-model.js';
import type { ModelDescriptor } from '../descriptor-schema.js';
import { loadModelDescriptor } from '../load-descriptor.js';
import { readOnnxGraph, type OnnxGraph } from '../onnx/onnx-graph.js';

/** What `visionpipe optimize` works on: the fp32 graph, how frames are fed to it, and how its output is read. */
export interface OptimizeSubject {
  /** File stem for the variants, e.g. pretrainedResnet. */
  stem: string;
  graph: OnnxGraph;
  spec: PreprocessSpec;
  /** Dims of one input tensor, e.g. [1, 32, 32, 3]. */
  dims: number[];
  task: 'classification' | 'detection';
  /** Classifier outputs are compared as probabilities; logits are softmaxed first. */
  output: 'probabilities' | 'logits' | 'boxes';
  /** When the model was given as a descriptor: each variant gets one of its own, ready for `visionpipe run -m`. */
  descriptor?: ModelDescriptor;
}

/**
 * Writes `<variant>.yaml` next to an ONNX variant of a descriptor's model: the same preprocessing, task, decoder and
 * labels, `format: onnx` and `path` the variant — so `visionpipe run clip -m out/opt/centernet.int8-mse.yaml` runs it.
 * Returns the descriptor's path (undefined for a bare model file, which has no descriptor to copy).
 */
export function writeVariantDescriptor(subject: OptimizeSubject, variant: string, onnxFile: string): string | undefined {
  const d = subject.descriptor;
  if (d === undefined) return undefined;
  const file = onnxFile.replace(/\.onnx$/i, '.yaml');
  const fields = {
    name: `${d.name}-${variant}`,
    description: `${d.description === '' ? d.name : d.description}; the ${variant} variant written by visionpipe optimize`,
    format: 'onnx',
    path: basename(onnxFile),
    engine: 'onnx',
    task: d.task,
    input: { ...d.input, name: subject.graph.inputs[0]!.name },
    preprocess: d.preprocess,
    output: { ...d.output, name: subject.graph.outputs[0]!.name },
    labels: [...d.labels],
  };
  writeFileSync(file, `# Written by visionpipe optimize from ${basename(d.descriptorPath)}\n${stringify(fields)}`);
  return file;
}

const MODEL_FILE = /\.(h5|hdf5|keras|json|onnx|tflite)$/i;
const RAW_DEFAULTS: Omit<PreprocessSpec, 'inputWh' | 'layout'> = {
  dtype: 'float32', resize: 'stretch', interpolation: 'auto', pixelFormat: 'rgb', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], padValue: 114,
};

/**
 * A Keras .h5, a TF.js graph model.json, a TFLite file or an ONNX file (a classifier fed stretched RGB 0..255 frames unless
 * `preprocess` says otherwise), or a model descriptor (name in models/ or .yaml path), which also says how to
 * preprocess and whether the model classifies or detects.
 */
export async function loadOptimizeSubject(model: string, preprocess: Partial<PreprocessSpec> = {}): Promise<OptimizeSubject> {
  if (MODEL_FILE.test(model)) {
    if (!existsSync(model)) throw new VisionpipeError('VP_MODEL_NOT_FOUND', 'The model file does not exist', { value: model, hint: 'Check the path of the model file.' });
    const graph = /\.onnx$/i.test(model) ? readOnnxGraph(readFileSync(model), basename(model)) : await importModel(model);
    const { layout, hw } = inputGeometry(graph, model);
    const spec: PreprocessSpec = { ...RAW_DEFAULTS, inputWh: [hw[1], hw[0]], layout, ...preprocess };
    return { stem: basename(model).replace(MODEL_FILE, ''), graph: onlyFirstOutput(floatOnly(graph, model)), spec, dims: inputDims(spec), task: 'classification', output: 'probabilities' };
  }
  const descriptorLike = /\.ya?ml$/i.test(model) || !/[/\\.]/.test(model);
  if (!descriptorLike) {
    const expected = 'a Keras .h5, a TF.js model.json, a .tflite file, an .onnx file, or a descriptor (a name in models/ or a .yaml path)';
    if (existsSync(model)) throw new VisionpipeError('VP_MODEL_UNSUPPORTED', 'visionpipe optimize cannot read this kind of file', { value: model, expected, hint: 'Convert the model to one of those first.' });
    throw new VisionpipeError('VP_MODEL_NOT_FOUND', 'No such model file', { value: model, expected, hint: 'Check the path of the model file.' });
  }
  const descriptor = loadModelDescriptor(model);
  return fromDescriptor(descriptor, preprocess);
}

async function fromDescriptor(d: ModelDescriptor, preprocess: Partial<PreprocessSpec>): Promise<OptimizeSubject> {
  if (d.format === 'tfjs-layers') {
    throw new VisionpipeError('VP_MODEL_UNSUPPORTED', `visionpipe optimize cannot import TF.js layers models ("${d.name}")`, {
      value: d.modelPath,
      hint: 'Give it the Keras .h5 the layers model came from, or a TF.js graph model.',
    });
  }
  if (d.input.dtype !== 'float32') {
    throw new VisionpipeError('VP_MODEL_UNSUPPORTED', `visionpipe optimize calibrates float32-input models; "${d.name}" takes ${d.input.dtype}`, { value: d.descriptorPath });
  }
  let graph = d.format === 'onnx' ? readOnnxGraph(readFileSync(d.modelPath), d.name) : await importModel(d.modelPath, d.output.name);
  if (d.format === 'onnx' && d.output.name !== undefined) {
    const out = graph.outputs.find((o) => o.name === d.output.name);
    if (out === undefined) throw new VisionpipeError('VP_MODEL_SHAPE_MISMATCH', `The model has no output "${d.output.name}"`, { value: graph.outputs.map((o) => o.name) });
    graph.outputs = [out];
  }
  graph = onlyFirstOutput(floatOnly(graph, d.modelPath));
  const spec: PreprocessSpec = { ...preprocessSpecOf(d), ...preprocess };
  return {
    stem: d.name,
    graph,
    spec,
    dims: inputDims(spec),
    task: d.task,
    output: d.task === 'detection' ? 'boxes' : d.output.decoder === 'logits' ? 'logits' : 'probabilities',
    descriptor: d,
  };
}

/** optimize quantizes a float model itself: an already quantized one (an int8 .tflite) is a comparison, not a start. */
function floatOnly(g: OnnxGraph, model: string): OnnxGraph {
  if (g.nodes.some((n) => n.op === 'QuantizeLinear' || n.op === 'DequantizeLinear')) {
    throw new VisionpipeError('VP_MODEL_UNSUPPORTED', 'visionpipe optimize starts from a float model; this one is already quantized', {
      value: model,
      hint: 'Give optimize the float model (e.g. the float .tflite or the .h5) and this file with --compare, to see it beside visionpipe’s own int8.',
    });
  }
  return g;
}

function onlyFirstOutput(g: OnnxGraph): OnnxGraph {
  g.outputs = g.outputs.slice(0, 1);
  return g;
}

/** NHWC [N, H, W, 3] or NCHW [N, 3, H, W] with a fixed size; anything else needs a descriptor. */
function inputGeometry(g: OnnxGraph, model: string): { layout: 'nhwc' | 'nchw'; hw: [number, number] } {
  const dims = g.inputs[0]?.dims ?? [];
  const [, a, b, c] = dims;
  if (dims.length === 4 && c === 3 && a != null && b != null) return { layout: 'nhwc', hw: [a, b] };
  if (dims.length === 4 && a === 3 && b != null && c != null) return { layout: 'nchw', hw: [b, c] };
  throw new VisionpipeError('VP_MODEL_SHAPE_MISMATCH', `The input of ${basename(model)} is not a fixed-size 3-channel image`, {
    value: dims.map((d) => d ?? '?'),
    expected: '[N, H, W, 3] or [N, 3, H, W]',
    hint: 'Write a model descriptor (models/README.md) that gives the input size and preprocessing, and pass it instead.',
  });
}
