import { VisionpipeError } from '../../errors.js';
import { DataType, OnnxGraph } from '../onnx/onnx-graph.js';
import { depthwiseToOnnx, hwioToOihw, pair, windowGeometry } from './keras-layer-math.js';
import type { KerasLayer, KerasModel } from './read-keras-h5.js';

/** A tensor inside the graph: NCHW feature maps ([c, h, w]) or a flat [features] vector; the batch is dynamic. */
interface Value {
  name: string;
  shape: number[];
}

export interface KerasImportResult {
  graph: OnnxGraph;
  /** NHWC input [N, H, W, C] with N dynamic, named `input`; output named `output`. */
  inputShapeNhwc: [number, number, number];
  outputShape: number[];
  /** Layers folded away (BatchNormalization into the convolution before it). */
  folded: string[];
}

/**
 * Converts a Keras model into an ONNX graph that keeps the model's NHWC input and output (one Transpose inside),
 * computes in NCHW, reproduces TF "same" padding exactly, and folds BatchNormalization into the convolution
 * before it. An unsupported layer stops the import with its name and class: nothing is skipped silently.
 */
export function kerasToOnnx(model: KerasModel, name = 'keras'): KerasImportResult {
  const g = new OnnxGraph(name);
  const values = new Map<string, Value>();
  const uses = new Map<string, number>();
  for (const l of model.layers) for (const i of l.inbound) uses.set(i, (uses.get(i) ?? 0) + 1);
  const convOf = new Map<string, { weight: string; bias: string; cout: number }>();
  const folded: string[] = [];
  let inputShape: [number, number, number] | undefined;

  for (const layer of model.layers) {
    const ins = layer.inbound.map((n) => {
      const v = values.get(n);
      if (v === undefined) throw unsupported(layer, `its input "${n}" was not produced by an earlier layer`);
      return v;
    });
    const x = ins[0];
    const c = layer.config;
    const need = (): Value => {
      if (x === undefined) throw unsupported(layer, 'it has no input');
      return x;
    };
    let out: Value;
    switch (layer.className) {
      case 'InputLayer': {
        const shape = (c['batch_input_shape'] ?? c['batch_shape']) as Array<number | null> | undefined;
        if (shape?.length !== 4 || shape.slice(1).some((d) => typeof d !== 'number')) {
          throw unsupported(layer, `input shape ${JSON.stringify(shape)}: only fixed-size images [N, H, W, C] are supported`);
        }
        const [, h, w, ch] = shape as [null, number, number, number];
        inputShape = [h, w, ch];
        g.inputs.push({ name: 'input', dims: [null, h, w, ch] });
        out = { name: g.add('Transpose', ['input'], { perm: [0, 3, 1, 2] }, 'input_nchw'), shape: [ch, h, w] };
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        const v = need();
        const kernel = weight(layer, layer.className === 'Conv2D' ? 'kernel' : 'depthwise_kernel');
        const [kh = 1, kw = 1, cin = 1, last = 1] = kernel.shape;
        const depthwise = layer.className === 'DepthwiseConv2D';
        const groups = depthwise ? cin : Number(c['groups'] ?? 1);
        const cout = depthwise ? cin * last : last;
        const stride = pair(c['strides'], 1);
        const dilation = pair(c['dilation_rate'], 1);
        const geometry = spatial(layer, v, [kh, kw], stride, dilation, String(c['padding'] ?? 'valid'));
        const w = g.constant(`${layer.name}_W`, [cout, depthwise ? 1 : cin, kh, kw], depthwise ? depthwiseToOnnx(kernel.data, kernel.shape) : hwioToOihw(kernel.data, kernel.shape));
        const biasData = c['use_bias'] === false ? new Float32Array(cout) : weight(layer, 'bias').data;
        const b = g.constant(`${layer.name}_B`, [cout], Float32Array.from(biasData));
        const y = g.add('Conv', [v.name, w, b], { kernel_shape: [kh, kw], strides: stride, dilations: dilation, pads: geometry.pads, group: groups }, layer.name);
        out = activation(g, layer, { name: y, shape: [cout, geometry.h, geometry.w] }, String(c['activation'] ?? 'linear'));
        if (out.name === y) convOf.set(layer.name, { weight: w, bias: b, cout });
        break;
      }
      case 'BatchNormalization': {
        const v = need();
        const channels = v.shape[0] ?? 0;
        const gamma = c['scale'] === false ? new Float32Array(channels).fill(1) : weight(layer, 'gamma').data;
        const beta = c['center'] === false ? new Float32Array(channels) : weight(layer, 'beta').data;
        const mean = weight(layer, 'moving_mean').data;
        const variance = weight(layer, 'moving_variance').data;
        const eps = Number(c['epsilon'] ?? 1e-3);
        const source = layer.inbound[0];
        const conv = source === undefined ? undefined : convOf.get(source);
        if (conv !== undefined && uses.get(source!) === 1) {
          foldBatchNorm(g, conv, gamma, beta, mean, variance, eps);
          folded.push(layer.name);
          out = v;
        } else {
          const p = (n: string, d: Float32Array) => g.constant(`${layer.name}_${n}`, [channels], Float32Array.from(d));
          out = {
            name: g.add('BatchNormalization', [v.name, p('gamma', gamma), p('beta', beta), p('mean', mean), p('var', variance)], { epsilon: { f: eps } }, layer.name),
            shape: v.shape,
          };
        }
        break;
      }
      case 'Activation':
        out = activation(g, layer, need(), String(c['activation']));
        break;
      case 'ReLU': {
        const v = need();
        const max = c['max_value'] as number | null | undefined;
        const slope = Number(c['negative_slope'] ?? 0);
        if (Number(c['threshold'] ?? 0) !== 0) throw unsupported(layer, 'a non-zero threshold');
        if (slope !== 0 && max != null) throw unsupported(layer, 'both negative_slope and max_value');
        if (slope !== 0) out = { name: g.add('LeakyRelu', [v.name], { alpha: { f: slope } }, layer.name), shape: v.shape };
        else if (max != null) out = clip(g, v, 0, max, layer.name);
        else out = { name: g.add('Relu', [v.name], undefined, layer.name), shape: v.shape };
        break;
      }
      case 'Add':
      case 'Multiply':
      case 'Subtract': {
        const op = layer.className === 'Add' ? 'Add' : layer.className === 'Multiply' ? 'Mul' : 'Sub';
        if (ins.length < 2) throw unsupported(layer, 'fewer than two inputs');
        let acc = ins[0]!;
        for (const next of ins.slice(1)) acc = { name: g.add(op, [acc.name, next.name], undefined, layer.name), shape: acc.shape };
        out = acc;
        break;
      }
      case 'Concatenate': {
        const axis = Number(c['axis'] ?? -1);
        if (ins.some((v) => v.shape.length !== 3) || (axis !== -1 && axis !== 3)) throw unsupported(layer, `axis ${axis} (only the channel axis)`);
        const channels = ins.reduce((a, v) => a + (v.shape[0] ?? 0), 0);
        out = { name: g.add('Concat', ins.map((v) => v.name), { axis: 1 }, layer.name), shape: [channels, ...need().shape.slice(1)] };
        break;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        const v = need();
        const size = pair(c['pool_size'], 2);
        const stride = pair(c['strides'] ?? c['pool_size'], 2);
        const geometry = spatial(layer, v, size, stride, [1, 1], String(c['padding'] ?? 'valid'));
        // TF's "same" average excludes the padding from the mean: ONNX's count_include_pad = 0 (the default).
        const op = layer.className === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool';
        out = { name: g.add(op, [v.name], { kernel_shape: size, strides: stride, pads: geometry.pads }, layer.name), shape: [v.shape[0]!, geometry.h, geometry.w] };
        break;
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D': {
        const v = need();
        const pooled = g.add(layer.className === 'GlobalAveragePooling2D' ? 'GlobalAveragePool' : 'GlobalMaxPool', [v.name], undefined, layer.name);
        out = c['keepdims'] === true ? { name: pooled, shape: [v.shape[0]!, 1, 1] } : { name: g.add('Flatten', [pooled], { axis: 1 }, layer.name), shape: [v.shape[0]!] };
        break;
      }
      case 'ZeroPadding2D': {
        const v = need();
        const p = c['padding'];
        const [[top, bottom], [left, right]] = Array.isArray(p) && Array.isArray(p[0]) ? (p as [[number, number], [number, number]]) : [pair(p, 1), pair(p, 1)].map((x, i) => (i === 0 ? [x[0], x[0]] : [x[1], x[1]])) as [[number, number], [number, number]];
        const pads = g.constant(`${layer.name}_pads`, [8], BigInt64Array.from([0, 0, top, left, 0, 0, bottom, right].map(BigInt)), DataType.INT64);
        out = { name: g.add('Pad', [v.name, pads], { mode: 'constant' }, layer.name), shape: [v.shape[0]!, v.shape[1]! + top + bottom, v.shape[2]! + left + right] };
        break;
      }
      case 'Flatten': {
        const v = need();
        // Keras flattens NHWC: go back to NHWC first so the order of features matches the Dense weights.
        const src = v.shape.length === 3 ? g.add('Transpose', [v.name], { perm: [0, 2, 3, 1] }, `${layer.name}_nhwc`) : v.name;
        out = { name: g.add('Flatten', [src], { axis: 1 }, layer.name), shape: [v.shape.reduce((a, b) => a * b, 1)] };
        break;
      }
      case 'Dense': {
        const v = need();
        if (v.shape.length !== 1) throw unsupported(layer, `a ${v.shape.length + 1}-D input (only [N, features])`);
        const kernel = weight(layer, 'kernel');
        const [fin = 0, fout = 0] = kernel.shape;
        const w = g.constant(`${layer.name}_W`, [fin, fout], Float32Array.from(kernel.data));
        const b = g.constant(`${layer.name}_B`, [fout], c['use_bias'] === false ? new Float32Array(fout) : Float32Array.from(weight(layer, 'bias').data));
        const y = g.add('Gemm', [v.name, w, b], undefined, layer.name);
        out = activation(g, layer, { name: y, shape: [fout] }, String(c['activation'] ?? 'linear'));
        break;
      }
      case 'Softmax':
        out = activation(g, layer, need(), 'softmax');
        break;
      case 'Dropout':
      case 'SpatialDropout2D':
      case 'GaussianNoise':
      case 'GaussianDropout':
        out = need();
        break;
      default:
        throw unsupported(layer, 'this layer type is not supported by the Keras importer');
    }
    values.set(layer.name, out);
  }

  const outName = model.outputs[0];
  const result = outName === undefined ? undefined : values.get(outName);
  if (result === undefined || inputShape === undefined) {
    throw new VisionpipeError('VP_MODEL_INVALID', 'The Keras model has no usable input or output layer', { value: { inputs: model.inputs, outputs: model.outputs } });
  }
  const nhwc = result.shape.length === 3 ? g.add('Transpose', [result.name], { perm: [0, 2, 3, 1] }, 'output_nhwc') : result.name;
  g.nodes.push({ op: 'Identity', inputs: [nhwc], outputs: ['output'], name: 'output_identity' });
  const outputShape = result.shape.length === 3 ? [result.shape[1]!, result.shape[2]!, result.shape[0]!] : result.shape;
  g.outputs.push({ name: 'output', dims: [null, ...outputShape] });
  return { graph: g, inputShapeNhwc: inputShape, outputShape, folded };
}

function weight(layer: KerasLayer, name: string): { shape: number[]; data: Float32Array } {
  const w = layer.weights.get(name);
  if (w === undefined) {
    throw new VisionpipeError('VP_MODEL_INVALID', `Layer "${layer.name}" (${layer.className}) has no "${name}" weights in the file`, {
      value: [...layer.weights.keys()],
      hint: 'The .h5 must hold the weights (model.save, not a config-only export).',
    });
  }
  return w;
}

function spatial(layer: KerasLayer, v: Value, k: [number, number], s: [number, number], d: [number, number], padding: string) {
  const [, h = 0, w = 0] = v.shape;
  if (v.shape.length !== 3) throw unsupported(layer, 'an input that is not an image feature map');
  const geometry = windowGeometry([h, w], k, s, d, padding);
  if (geometry === null) throw unsupported(layer, `padding "${padding}"`);
  return geometry;
}

function clip(g: OnnxGraph, v: Value, min: number, max: number, base: string): Value {
  return { name: g.clip(v.name, min, max, base), shape: v.shape };
}

function activation(g: OnnxGraph, layer: KerasLayer, v: Value, name: string): Value {
  const unary = (op: string, attrs?: Record<string, { f: number } | number>) => ({ name: g.add(op, [v.name], attrs, `${layer.name}_${name}`), shape: v.shape });
  switch (name) {
    case 'linear':
      return v;
    case 'relu':
      return unary('Relu');
    case 'relu6':
      return clip(g, v, 0, 6, `${layer.name}_relu6`);
    case 'sigmoid':
      return unary('Sigmoid');
    case 'tanh':
      return unary('Tanh');
    case 'elu':
      return unary('Elu', { alpha: { f: 1 } });
    case 'selu':
      return unary('Selu');
    case 'softplus':
      return unary('Softplus');
    case 'hard_sigmoid':
      return unary('HardSigmoid', { alpha: { f: 0.2 }, beta: { f: 0.5 } });
    case 'swish':
    case 'silu': {
      const s = g.add('Sigmoid', [v.name], undefined, `${layer.name}_swish`);
      return { name: g.add('Mul', [v.name, s], undefined, `${layer.name}_swish`), shape: v.shape };
    }
    case 'softmax':
      // Keras' softmax runs over the last (channel) axis: axis 1 in NCHW feature maps.
      return unary('Softmax', { axis: v.shape.length === 3 ? 1 : -1 });
    default:
      throw unsupported(layer, `activation "${name}"`);
  }
}

function foldBatchNorm(
  g: OnnxGraph,
  conv: { weight: string; bias: string; cout: number },
  gamma: Float32Array,
  beta: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  eps: number,
): void {
  const w = g.initializers.get(conv.weight)?.data as Float32Array;
  const b = g.initializers.get(conv.bias)?.data as Float32Array;
  const perOut = w.length / conv.cout;
  for (let o = 0; o < conv.cout; o++) {
    const scale = gamma[o]! / Math.sqrt(variance[o]! + eps);
    for (let i = 0; i < perOut; i++) w[o * perOut + i]! *= scale;
    b[o] = (b[o]! - mean[o]!) * scale + beta[o]!;
  }
}

function unsupported(layer: KerasLayer, why: string): VisionpipeError {
  return new VisionpipeError('VP_MODEL_UNSUPPORTED', `Cannot import layer "${layer.name}" (${layer.className}): ${why}`, {
    value: layer.className,
  });
}
