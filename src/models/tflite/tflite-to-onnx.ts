import { readFileSync } from 'node:fs';
import { VisionpipeError } from '../../errors.js';
import { windowGeometry } from '../keras/keras-layer-math.js';
import { DataType, OnnxGraph, type OnnxInitializer } from '../onnx/onnx-graph.js';
import type { TfliteModel, TfliteOperator, TfliteQuantization, TfliteTensor, TfliteType } from './read-tflite.js';

/**
 * Converts a TFLite model (float32, float16 weights behind DEQUANTIZE, or fully int8 / uint8 quantized) to ONNX.
 *
 * Layout: TFLite is NHWC. Spatial ops (Conv, pooling, resize) run in NCHW in ONNX; each 4-D value is kept in the
 * layout its producer made and converted only where a consumer needs the other one (elementwise ops take either),
 * so a ResNet or MobileNet body has no transposes between layers, only one after the input and one before a
 * flatten. Axis-carrying ops (concat, mean, pad) remap their axes instead of converting.
 *
 * Quantized models become QDQ: each int8 activation is a QuantizeLinear output carrying TFLite's own scale and zero
 * point, each consumer reads it through its own DequantizeLinear, weights are int8 initializers (per-channel scales
 * kept) and biases int32 with TFLite's bias scale. onnxruntime fuses DQ → op → Q into integer kernels (QLinearConv,
 * QLinearAdd, QGemm …). Ops that only move values (reshape, max pool, transpose, slice, gather) run on the int8
 * tensor itself when TFLite gives input and output the same quantization, as TFLite's kernels do. The graph's input
 * and output stay float: a quantized input is quantized inside the graph with its own parameters (an int8 input with
 * scale 1 and zero point −128 takes raw 0..255 pixels like the float model), and outputs are dequantized.
 */
export function tfliteToOnnx(
  model: TfliteModel,
  name = 'tflite',
  weightType: IntegerWeightType = integerWeightTypeForThisCpu(),
  outputName?: string,
): { graph: OnnxGraph; inputShape: number[]; outputShapes: number[][] } {
  return new Converter(model, name, weightType, outputName).run();
}

export type IntegerWeightType = 'int8' | 'uint8';

let cpuWeightType: IntegerWeightType | undefined;

/**
 * How quantized weights are stored for onnxruntime on this CPU. Activations are uint8; with int8 weights its x86
 * kernels multiply u8 × s8 pairs and add them in 16 bits (vpmaddubsw), which saturates on CPUs without VNNI
 * (AVX2 only): on pretrainedResnet_quant.tflite and vtest.avi frames that left only 55 % of the output bytes equal to
 * TFLite's (up to 115 steps apart). Weights moved to uint8 (value + 128, zero point + 128: the same real numbers)
 * run the u8 × u8 kernel, which widens first: 89 % equal, the rest rounding (see README, "TFLite models").
 * With VNNI or AMX (32-bit accumulation) or off x86, int8 weights are exact and the faster choice.
 */
export function integerWeightTypeForThisCpu(): IntegerWeightType {
  if (cpuWeightType !== undefined) return cpuWeightType;
  let flags = '';
  try {
    flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '';
  } catch {
    // Not Linux: keep int8.
  }
  const x86 = process.arch === 'x64' || process.arch === 'ia32';
  const vnni = /\b(avx512_vnni|avx_vnni|amx_int8)\b/.test(flags);
  cpuWeightType = x86 && flags !== '' && !vnni ? 'uint8' : 'int8';
  return cpuWeightType;
}

type Layout = 'nhwc' | 'nchw';
const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];
/** Where NHWC axis a sits in NCHW. */
const NCHW_POS = [0, 2, 3, 1];

interface QuantParams {
  scale: Float32Array;
  zeroPoint: number[];
  /** TFLite axis (in the tensor's own NHWC / OHWI order). */
  axis: number;
  type: TfliteType;
}

/** The ONNX side of one TFLite tensor. */
type Val =
  | { kind: 'float'; name: string; layout: Layout; shape: number[]; dtype: number; views: Map<Layout, string> }
  | { kind: 'quant'; name: string; layout: Layout; shape: number[]; qp: QuantParams; views: Map<Layout, string>; fromFloat?: string }
  | { kind: 'const'; tensor: TfliteTensor; shape: number[]; float?: Float32Array; views: Map<Layout, string> };

const ONNX_INT: Partial<Record<TfliteType, number>> = { int8: DataType.INT8, uint8: DataType.UINT8, int32: DataType.INT32, int64: DataType.INT64 };
const ACTIVATIONS = ['NONE', 'RELU', 'RELU_N1_TO_1', 'RELU6', 'TANH', 'SIGN_BIT'];

class Converter {
  private readonly g: OnnxGraph;
  private readonly vals = new Map<number, Val>();

  private readonly outputs: number[];

  constructor(
    private readonly m: TfliteModel,
    name: string,
    private readonly weightType: IntegerWeightType,
    outputName: string | undefined,
  ) {
    this.g = new OnnxGraph(name);
    if (outputName === undefined) this.outputs = m.outputs;
    else {
      const t = m.tensors.find((x) => x.name === outputName && m.operators.some((o) => o.outputs.includes(x.index)));
      if (t === undefined) {
        throw new VisionpipeError('VP_MODEL_SHAPE_MISMATCH', `The TFLite model computes no tensor named "${outputName}"`, {
          value: outputName,
          expected: `one of its outputs: ${m.outputs.map((i) => `"${m.tensors[i]?.name}"`).join(', ')} (or another tensor an operator writes)`,
          hint: "Fix output.name in the descriptor (or --output-node), or leave it out to use the model's first output.",
        });
      }
      this.outputs = [t.index];
    }
  }

  run(): { graph: OnnxGraph; inputShape: number[]; outputShapes: number[][] } {
    const { m, g } = this;
    if (m.inputs.length !== 1) throw new VisionpipeError('VP_MODEL_UNSUPPORTED', `The TFLite model has ${m.inputs.length} inputs; visionpipe feeds one image`, { value: m.inputs.length, expected: '1 input' });
    const inT = this.tensor(m.inputs[0]!);
    if (inT.shape.some((d) => !(d > 0))) throw new VisionpipeError('VP_MODEL_UNSUPPORTED', 'Only fixed-size inputs can be converted', { value: inT.shape });
    g.inputs.push({ name: 'input', dims: inT.shape });
    if (inT.type === 'float32') this.vals.set(inT.index, floatVal('input', inT.shape, 'nhwc'));
    else if (isQuantized(inT) && (inT.type === 'int8' || inT.type === 'uint8')) this.vals.set(inT.index, { ...this.quantize('input', 'nhwc', inT), fromFloat: 'input' } as Val);
    else throw new VisionpipeError('VP_MODEL_UNSUPPORTED', `The TFLite input "${inT.name}" is ${inT.type}${isQuantized(inT) ? '' : ' without quantization parameters'}`, { value: inT.type, expected: 'a float32 or a quantized int8 / uint8 input' });
    if (this.outputs.length === 0) throw new VisionpipeError('VP_MODEL_INVALID', 'The TFLite model lists no outputs', { hint: 'Re-export the model; its main subgraph names no output tensor.' });

    for (const op of m.operators) this.convert(op);

    const outputShapes: number[][] = [];
    this.outputs.forEach((index, i) => {
      const t = this.tensor(index);
      const v = this.val(index, undefined);
      const outName = i === 0 ? 'output' : `output_${i}`;
      const y = this.floatIn(v, 'nhwc');
      g.nodes.push({ op: 'Identity', inputs: [y], outputs: [outName], name: g.fresh('out') });
      g.outputs.push({ name: outName, dims: t.shape, dataType: v.kind === 'float' ? v.dtype : DataType.FLOAT });
      outputShapes.push(t.shape);
    });
    g.pruneInitializers();
    return { graph: g, inputShape: inT.shape, outputShapes };
  }

  private tensor(index: number): TfliteTensor {
    const t = this.m.tensors[index];
    if (t === undefined) throw new VisionpipeError('VP_MODEL_INVALID', `The TFLite model names tensor ${index}, which it does not have`, { value: index });
    return t;
  }

  /** The value of tensor `index`; constants come from their buffers on first use. */
  private val(index: number, op: TfliteOperator | undefined): Val {
    const known = this.vals.get(index);
    if (known !== undefined) return known;
    const t = this.tensor(index);
    if (t.data === null) {
      throw op === undefined
        ? new VisionpipeError('VP_MODEL_INVALID', `The TFLite output "${t.name}" is never computed`, { value: t.name })
        : new VisionpipeError('VP_MODEL_INVALID', `TFLite operator #${op.index} (${op.op}) reads "${t.name}", which is neither computed before it nor a constant`, {
            hint: 'Re-export the model: its operators are not in execution order, or a constant lost its data.',
          });
    }
    const v: Val = { kind: 'const', tensor: t, shape: t.shape, views: new Map() };
    this.vals.set(index, v);
    return v;
  }

  private convert(op: TfliteOperator): void {
    const ins = op.inputs.map((i) => (i < 0 ? null : this.val(i, op)));
    const x = ins[0] ?? null;
    const outT = this.tensor(op.outputs[0]!);
    const opts = op.options;
    const need = (v: Val | null | undefined, what: string): Val => {
      if (v === null || v === undefined) throw unsupported(op, this.m, `its ${what} input is missing`);
      return v;
    };
    const set = (v: Val) => this.vals.set(outT.index, v);
    switch (op.op) {
      case 'CONV_2D':
      case 'DEPTHWISE_CONV_2D':
        set(this.conv(op, need(x, 'image'), need(ins[1], 'filter'), ins[2] ?? null, outT));
        return;
      case 'FULLY_CONNECTED':
        set(this.fullyConnected(op, need(x, 'data'), need(ins[1], 'weights'), ins[2] ?? null, outT));
        return;
      case 'ADD':
      case 'SUB':
      case 'MUL':
      case 'DIV':
      case 'MAXIMUM':
      case 'MINIMUM': {
        const onnxOp = { ADD: 'Add', SUB: 'Sub', MUL: 'Mul', DIV: 'Div', MAXIMUM: 'Max', MINIMUM: 'Min' }[op.op]!;
        const [a, b] = [need(x, 'first'), need(ins[1], 'second')];
        const layout = this.binaryLayout(a, b);
        const y = this.g.add(onnxOp, [this.floatIn(a, layout), this.floatIn(b, layout)]);
        const act = ['ADD', 'SUB', 'MUL', 'DIV'].includes(op.op) ? (opts?.int8(0) ?? 0) : 0;
        set(this.output(op, outT, this.activation(op, y, act), layout));
        return;
      }
      case 'AVERAGE_POOL_2D':
      case 'MAX_POOL_2D':
        set(this.pool(op, need(x, 'data'), outT));
        return;
      case 'MEAN':
        set(this.mean(op, need(x, 'data'), this.ints(op, need(ins[1], 'axes')), opts?.bool(0) ?? false, outT));
        return;
      case 'RESHAPE':
      case 'SQUEEZE':
      case 'EXPAND_DIMS': {
        const shape = this.g.constant('shape', [outT.shape.length], BigInt64Array.from(outT.shape.map(BigInt)), DataType.INT64);
        set(this.move(op, need(x, 'data'), outT, 'nhwc', (t) => this.g.add('Reshape', [t, shape])));
        return;
      }
      case 'TRANSPOSE': {
        const perm = this.ints(op, need(ins[1], 'permutation'));
        set(this.move(op, need(x, 'data'), outT, 'nhwc', (t) => this.g.add('Transpose', [t], { perm })));
        return;
      }
      case 'SOFTMAX': {
        const v = need(x, 'data');
        const beta = opts?.float(0, 1) ?? 1;
        let t = this.floatIn(v, 'nhwc');
        if (beta !== 1) t = this.g.add('Mul', [t, this.g.constant('beta', [], Float32Array.of(beta))]);
        set(this.output(op, outT, this.g.add('Softmax', [t], { axis: -1 }), 'nhwc'));
        return;
      }
      case 'LOGISTIC':
      case 'TANH':
      case 'RELU':
      case 'RELU6':
      case 'RELU_N1_TO_1':
      case 'HARD_SWISH': {
        const v = need(x, 'data');
        const layout = layoutOf(v);
        const t = this.floatIn(v, layout);
        const g = this.g;
        const y =
          op.op === 'LOGISTIC' ? g.add('Sigmoid', [t])
          : op.op === 'TANH' ? g.add('Tanh', [t])
          : op.op === 'RELU' ? g.add('Relu', [t])
          : op.op === 'RELU6' ? g.clip(t, 0, 6, 'relu6')
          : op.op === 'RELU_N1_TO_1' ? g.clip(t, -1, 1, 'relu1')
          // HardSwish arrived in opset 14; x · HardSigmoid(x) with α = 1/6, β = 0.5 is the same function in opset 13.
          : g.add('Mul', [t, g.add('HardSigmoid', [t], { alpha: { f: 1 / 6 }, beta: { f: 0.5 } })], undefined, 'hard_swish');
        set(this.output(op, outT, y, layout));
        return;
      }
      case 'PAD':
      case 'PADV2':
        set(this.pad(op, need(x, 'data'), this.ints(op, need(ins[1], 'paddings')), ins[2] ?? null, outT));
        return;
      case 'CONCATENATION': {
        const parts = ins.map((v) => need(v, 'data'));
        const rank = outT.shape.length;
        const raw = opts?.int(0) ?? 0;
        const axis = raw < 0 ? raw + rank : raw;
        const layout = rank === 4 && parts.some((p) => p.kind !== 'const' && p.layout === 'nchw') ? 'nchw' : 'nhwc';
        const y = this.g.add('Concat', parts.map((p) => this.floatIn(p, layout)), { axis: layout === 'nchw' ? NCHW_POS[axis]! : axis });
        set(this.output(op, outT, this.activation(op, y, opts?.int8(1) ?? 0), layout));
        return;
      }
      case 'QUANTIZE':
      case 'DEQUANTIZE': {
        const v = need(x, 'data');
        if (v.kind === 'const') {
          // float16 weights (or int8 weights dequantized ahead of time): the float values become the constant.
          set({ kind: 'const', tensor: outT, shape: outT.shape, float: constFloat(v, op, this.m), views: new Map() });
          return;
        }
        const layout = layoutOf(v);
        set(this.output(op, outT, this.floatIn(v, layout), layout));
        return;
      }
      case 'RESIZE_BILINEAR':
      case 'RESIZE_NEAREST_NEIGHBOR':
        set(this.resize(op, need(x, 'data'), outT));
        return;
      case 'STRIDED_SLICE':
        set(this.stridedSlice(op, need(x, 'data'), ins, outT));
        return;
      case 'GATHER': {
        const [params, indices] = [need(x, 'params'), need(ins[1], 'indices')];
        if ((opts?.int(1) ?? 0) !== 0) throw unsupported(op, this.m, 'batch_dims ≠ 0');
        const raw = opts?.int(0) ?? 0;
        const axis = raw < 0 ? raw + params.shape.length : raw;
        const idx = this.intTensor(indices);
        set(this.move(op, params, outT, 'nhwc', (t) => this.g.add('Gather', [t, idx], { axis })));
        return;
      }
      case 'ARG_MAX': {
        const v = need(x, 'data');
        const raw = this.ints(op, need(ins[1], 'axis'))[0] ?? 0;
        const axis = raw < 0 ? raw + v.shape.length : raw;
        // ArgMax on the int8 values picks the same index as on the dequantized ones (a positive scale keeps order).
        const src = v.kind === 'quant' ? this.view(v, 'nhwc') : this.floatIn(v, 'nhwc');
        let y = this.g.add('ArgMax', [src], { axis, keepdims: 0, select_last_index: 0 });
        const type = outT.type === 'int64' ? DataType.INT64 : DataType.INT32;
        if (type === DataType.INT32) y = this.g.add('Cast', [y], { to: DataType.INT32 });
        set({ kind: 'float', name: y, layout: 'nhwc', shape: outT.shape, dtype: type, views: new Map() });
        return;
      }
      default:
        throw unsupported(op, this.m, 'the TFLite importer does not support this op');
    }
  }

  // ---- values and layouts ----

  /** The tensor of `v` itself (float or int8) in `layout` (4-D only; others have one layout). */
  private view(v: Val, layout: Layout): string {
    if (v.kind === 'const') return this.constIn(v, layout);
    if (v.shape.length !== 4 || v.layout === layout) return v.name;
    let name = v.views.get(layout);
    if (name === undefined) {
      const perm = layout === 'nchw' ? TO_NCHW : TO_NHWC;
      // The graph input is transposed before it is quantized, so its Q → DQ pair stays adjacent.
      name =
        v.kind === 'quant' && v.fromFloat !== undefined
          ? this.g.add('QuantizeLinear', [this.g.add('Transpose', [v.fromFloat], { perm }), ...this.qparams(v.qp)], undefined, 'q')
          : this.g.add('Transpose', [v.name], { perm });
      v.views.set(layout, name);
    }
    return name;
  }

  /** A float tensor of `v` in `layout`: quantized values get their own DequantizeLinear (one per consumer, as onnxruntime's QDQ fusions want). */
  private floatIn(v: Val, layout: Layout): string {
    if (v.kind !== 'quant') return this.view(v, layout);
    const src = this.view(v, layout);
    return this.g.add('DequantizeLinear', [src, ...this.qparams(v.qp)], this.axisAttr(v.qp, layout, v.shape.length));
  }

  /** A constant as an initializer (float, or int8 + DequantizeLinear when quantized), laid out for `layout`. */
  private constIn(v: Extract<Val, { kind: 'const' }>, layout: Layout): string {
    const rank = v.shape.length;
    const key: Layout = rank === 4 ? layout : 'nhwc';
    const cached = v.views.get(key);
    if (cached !== undefined) return cached;
    const t = v.tensor;
    const perm = rank === 4 && key === 'nchw' ? TO_NCHW : null;
    const dims = perm === null ? v.shape : perm.map((p) => v.shape[p]!);
    let name: string;
    if (v.float === undefined && isQuantized(t) && t.type !== 'int32') {
      const q = typedData(t);
      const data = perm === null ? q : permute(q, v.shape, perm);
      const init = this.g.constant(safeName(t.name), dims, data as OnnxInitializer['data'], ONNX_INT[t.type]!);
      const qp = quantParams(t);
      name = this.g.add('DequantizeLinear', [init, ...this.qparams(qp)], this.axisAttr(qp, key, rank));
    } else if (v.float === undefined && (t.type === 'int32' || t.type === 'int64') && !isQuantized(t)) {
      const data = typedData(t);
      name = this.g.constant(safeName(t.name), dims, (perm === null ? data : permute(data, v.shape, perm)) as OnnxInitializer['data'], ONNX_INT[t.type]!);
    } else {
      const f = v.float ?? constFloat(v, undefined, this.m);
      name = this.g.constant(safeName(t.name), dims, perm === null ? f : permute(f, v.shape, perm));
    }
    v.views.set(key, name);
    return name;
  }

  /** Scale and zero-point initializers of a DequantizeLinear / QuantizeLinear. */
  private qparams(qp: QuantParams): [string, string] {
    const perChannel = qp.scale.length > 1;
    const dims = perChannel ? [qp.scale.length] : [];
    const scale = this.g.constant('scale', dims, Float32Array.from(qp.scale));
    const zpType = ONNX_INT[qp.type] ?? DataType.INT8;
    const zps = perChannel ? qp.zeroPoint : [qp.zeroPoint[0] ?? 0];
    const zpData = zpType === DataType.UINT8 ? Uint8Array.from(zps) : zpType === DataType.INT32 ? Int32Array.from(zps) : Int8Array.from(zps);
    return [scale, this.g.constant('zero_point', dims, zpData, zpType)];
  }

  private axisAttr(qp: QuantParams, layout: Layout, rank: number): { axis: number } | undefined {
    if (qp.scale.length <= 1) return undefined;
    return { axis: rank === 4 && layout === 'nchw' ? NCHW_POS[qp.axis]! : qp.axis };
  }

  /** Float tensor `y` (in `layout`) as the value of TFLite tensor `t`: quantized again when `t` is quantized. */
  private output(op: TfliteOperator, t: TfliteTensor, y: string, layout: Layout): Val {
    if (t.type === 'float32') return floatVal(y, t.shape, t.shape.length === 4 ? layout : 'nhwc');
    if (isQuantized(t) && (t.type === 'int8' || t.type === 'uint8')) return this.quantize(y, t.shape.length === 4 ? layout : 'nhwc', t);
    throw unsupported(op, this.m, `its output "${t.name}" is ${t.type}${isQuantized(t) ? ' (quantized)' : ''}; float32 and int8 / uint8 quantized outputs are supported`);
  }

  private quantize(y: string, layout: Layout, t: TfliteTensor): Val {
    const qp = activationParams(t);
    if (qp.scale.length !== 1) throw new VisionpipeError('VP_MODEL_UNSUPPORTED', `The activation "${t.name}" is quantized per channel; TFLite activations are per tensor`, { value: qp.scale.length });
    const name = this.g.add('QuantizeLinear', [y, ...this.qparams(qp)], undefined, 'q');
    return { kind: 'quant', name, layout, shape: t.shape, qp, views: new Map() };
  }

  /** A fused activation (TFLite's ActivationFunctionType) applied in float, before the output's quantization. */
  private activation(op: TfliteOperator, y: string, code: number): string {
    switch (code) {
      case 0:
        return y;
      case 1:
        return this.g.add('Relu', [y]);
      case 2:
        return this.g.clip(y, -1, 1, 'relu1');
      case 3:
        return this.g.clip(y, 0, 6, 'relu6');
      case 4:
        return this.g.add('Tanh', [y]);
      default:
        throw unsupported(op, this.m, `fused activation ${ACTIVATIONS[code] ?? code}`);
    }
  }

  /** NCHW when a 4-D operand already is (and the other is 4-D or a scalar), else NHWC. */
  private binaryLayout(a: Val, b: Val): Layout {
    const nchw = [a, b].some((v) => v.kind !== 'const' && v.shape.length === 4 && v.layout === 'nchw');
    const fits = [a, b].every((v) => v.shape.length === 4 || v.shape.reduce((p, d) => p * d, 1) === 1);
    return nchw && fits ? 'nchw' : 'nhwc';
  }

  /**
   * Ops that only move or select values: on the int8 tensor itself when input and output share their quantization
   * (TFLite's kernels require that for these ops), otherwise through float.
   */
  private move(op: TfliteOperator, x: Val, outT: TfliteTensor, layout: Layout, build: (input: string) => string): Val {
    const outLayout: Layout = outT.shape.length === 4 ? layout : 'nhwc';
    if (x.kind === 'quant' && isQuantized(outT) && sameQuant(x.qp, activationParams(outT))) {
      return { kind: 'quant', name: build(this.view(x, layout)), layout: outLayout, shape: outT.shape, qp: x.qp, views: new Map() };
    }
    if (x.kind === 'float' && outT.type !== 'float32' && !isQuantized(outT)) {
      return { kind: 'float', name: build(this.view(x, layout)), layout: outLayout, shape: outT.shape, dtype: x.dtype, views: new Map() };
    }
    return this.output(op, outT, build(this.floatIn(x, layout)), outLayout);
  }

  /** Int32/int64 values of a constant (shapes, axes, paddings). */
  private ints(op: TfliteOperator, v: Val): number[] {
    if (v.kind !== 'const' || (v.tensor.type !== 'int32' && v.tensor.type !== 'int64')) throw unsupported(op, this.m, 'a shape / axis argument that is computed at run time');
    return Array.from(typedData(v.tensor), Number);
  }

  /** An integer index tensor (constant or computed) for Gather. */
  private intTensor(v: Val): string {
    if (v.kind === 'const') return this.constIn(v, 'nhwc');
    return this.view(v, 'nhwc');
  }

  // ---- ops ----

  private conv(op: TfliteOperator, x: Val, w: Val, bias: Val | null, outT: TfliteTensor): Val {
    const o = op.options;
    const depthwise = op.op === 'DEPTHWISE_CONV_2D';
    if (x.shape.length !== 4 || w.shape.length !== 4) throw unsupported(op, this.m, 'an image or filter that is not 4-D');
    if (w.kind !== 'const') throw unsupported(op, this.m, 'a filter that is not a constant');
    // CONV_2D filters are [cout, kh, kw, cin] (OHWI); depthwise ones [1, kh, kw, cout]. ONNX wants [cout, cin/group, kh, kw].
    const [d0 = 1, kh = 1, kw = 1, d3 = 1] = w.shape;
    const cin = x.shape[3]!;
    const cout = depthwise ? d3 : d0;
    const stride: [number, number] = [o?.int(2, 1) ?? 1, o?.int(1, 1) ?? 1];
    const dil: [number, number] = depthwise ? [o?.int(6, 1) ?? 1, o?.int(5, 1) ?? 1] : [o?.int(5, 1) ?? 1, o?.int(4, 1) ?? 1];
    const act = depthwise ? (o?.int8(4) ?? 0) : (o?.int8(3) ?? 0);
    const geo = windowGeometry([x.shape[1]!, x.shape[2]!], [kh, kw], stride, dil, (o?.int8(0) ?? 0) === 0 ? 'same' : 'valid');
    if (geo === null) throw unsupported(op, this.m, 'padding');
    // A CONV_2D filter with fewer input channels than the image is a grouped convolution (Keras Conv2D(groups=g)).
    const group = depthwise ? cin : cin / d3;
    if (!Number.isInteger(group) || cout % group !== 0) throw unsupported(op, this.m, `${cout} output channels and ${depthwise ? cout : d3} filter channels for ${cin} input channels`);
    const wName = this.weights(op, w, depthwise ? [3, 0, 1, 2] : [0, 3, 1, 2], depthwise ? 3 : 0);
    const inputs = [this.floatIn(x, 'nchw'), wName];
    if (bias !== null) inputs.push(this.biasIn(op, bias));
    const y = this.g.add('Conv', inputs, { kernel_shape: [kh, kw], strides: stride, dilations: dil, pads: geo.pads, group });
    return this.output(op, outT, this.activation(op, y, act), 'nchw');
  }

  /** A constant weight tensor permuted by `perm`, quantized ones as int8 + DequantizeLinear on the channel axis. */
  private weights(op: TfliteOperator, w: Extract<Val, { kind: 'const' }>, perm: number[], channelAxis: number): string {
    const t = w.tensor;
    const dims = perm.map((p) => w.shape[p]!);
    if (w.float === undefined && isQuantized(t) && (t.type === 'int8' || t.type === 'uint8')) {
      const qp = quantParams(t);
      if (qp.scale.length > 1 && qp.axis !== channelAxis) throw unsupported(op, this.m, `weights quantized along axis ${qp.axis}`);
      let data = permute(typedData(t), w.shape, perm) as Int8Array | Uint8Array;
      let wq = qp;
      if (this.weightType === 'uint8' && qp.type === 'int8') {
        data = Uint8Array.from(data, (v) => v + 128);
        wq = { ...qp, type: 'uint8', zeroPoint: qp.zeroPoint.map((z) => z + 128) };
      }
      const init = this.g.constant(safeName(t.name), dims, data, ONNX_INT[wq.type]!);
      return this.g.add('DequantizeLinear', [init, ...this.qparams(wq)], qp.scale.length > 1 ? { axis: perm.indexOf(channelAxis) } : undefined);
    }
    return this.g.constant(safeName(t.name), dims, permute(w.float ?? constFloat(w, op, this.m), w.shape, perm));
  }

  /** A bias: int32 with TFLite's scale (input scale × weight scale) behind DequantizeLinear, or float. */
  private biasIn(op: TfliteOperator, b: Val): string {
    if (b.kind !== 'const') return this.floatIn(b, 'nhwc');
    const t = b.tensor;
    if (b.float === undefined && isQuantized(t) && t.type === 'int32') {
      const qp = quantParams(t);
      const init = this.g.constant(safeName(t.name), b.shape, typedData(t) as Int32Array, DataType.INT32);
      return this.g.add('DequantizeLinear', [init, ...this.qparams(qp)], qp.scale.length > 1 ? { axis: 0 } : undefined);
    }
    if (b.float === undefined && isQuantized(t)) throw unsupported(op, this.m, `a ${t.type} bias`);
    return this.constIn(b, 'nhwc');
  }

  private fullyConnected(op: TfliteOperator, x: Val, w: Val, bias: Val | null, outT: TfliteTensor): Val {
    const o = op.options;
    if ((o?.int8(1) ?? 0) !== 0) throw unsupported(op, this.m, 'shuffled weights');
    if (w.kind !== 'const') throw unsupported(op, this.m, 'weights that are not a constant');
    const [units = 1, depth = 1] = w.shape;
    // TFLite flattens every input to [-1, depth] (in NHWC order) and writes [-1, units] (or keeps the leading dims).
    let t = this.floatIn(x, 'nhwc');
    if (x.shape.length !== 2) {
      const flat = this.g.constant('fc_shape', [2], BigInt64Array.of(-1n, BigInt(depth)), DataType.INT64);
      t = this.g.add('Reshape', [t, flat]);
    }
    // Weights [units, depth] are stored transposed, [depth, units], as the other importers write Gemm (no transB).
    const inputs = [t, this.weights(op, w, [1, 0], 0)];
    if (bias !== null) inputs.push(this.biasIn(op, bias));
    let y = this.g.add('Gemm', inputs);
    if (outT.shape.length !== 2 || outT.shape[1] !== units) {
      const shape = this.g.constant('fc_out_shape', [outT.shape.length], BigInt64Array.from(outT.shape.map(BigInt)), DataType.INT64);
      y = this.g.add('Reshape', [y, shape]);
    }
    return this.output(op, outT, this.activation(op, y, o?.int8(0) ?? 0), 'nhwc');
  }

  private pool(op: TfliteOperator, x: Val, outT: TfliteTensor): Val {
    const o = op.options;
    if (x.shape.length !== 4) throw unsupported(op, this.m, 'an input that is not 4-D [N, H, W, C]');
    const stride: [number, number] = [o?.int(2, 1) ?? 1, o?.int(1, 1) ?? 1];
    const k: [number, number] = [o?.int(4, 1) ?? 1, o?.int(3, 1) ?? 1];
    const geo = windowGeometry([x.shape[1]!, x.shape[2]!], k, stride, [1, 1], (o?.int8(0) ?? 0) === 0 ? 'same' : 'valid');
    if (geo === null) throw unsupported(op, this.m, 'padding');
    const act = o?.int8(5) ?? 0;
    // TFLite's average excludes the padding (count_include_pad = 0, ONNX's default).
    const attrs = { kernel_shape: k, strides: stride, pads: geo.pads };
    if (op.op === 'MAX_POOL_2D' && act === 0) return this.move(op, x, outT, 'nchw', (t) => this.g.add('MaxPool', [t], attrs));
    const y = this.g.add(op.op === 'MAX_POOL_2D' ? 'MaxPool' : 'AveragePool', [this.floatIn(x, 'nchw')], attrs);
    return this.output(op, outT, this.activation(op, y, act), 'nchw');
  }

  private mean(op: TfliteOperator, x: Val, rawAxes: number[], keep: boolean, outT: TfliteTensor): Val {
    const rank = x.shape.length;
    const axes = [...new Set(rawAxes.map((a) => (a < 0 ? a + rank : a)))].sort();
    if (rank === 4 && axes.length === 2 && axes[0] === 1 && axes[1] === 2) {
      // The global average of a feature map (MobileNet heads): GlobalAveragePool, which onnxruntime runs in int8.
      let y = this.g.add('GlobalAveragePool', [this.floatIn(x, 'nchw')]);
      if (keep) return this.output(op, outT, y, 'nchw');
      const shape = this.g.constant('mean_shape', [outT.shape.length], BigInt64Array.from(outT.shape.map(BigInt)), DataType.INT64);
      y = this.g.add('Reshape', [y, shape]);
      return this.output(op, outT, y, 'nhwc');
    }
    const y = this.g.add('ReduceMean', [this.floatIn(x, 'nhwc')], { axes, keepdims: keep ? 1 : 0 });
    return this.output(op, outT, y, 'nhwc');
  }

  private pad(op: TfliteOperator, x: Val, p: number[], value: Val | null, outT: TfliteTensor): Val {
    const rank = x.shape.length;
    const layout = rank === 4 ? layoutOf(x) : 'nhwc';
    const order = layout === 'nchw' ? TO_NCHW : Array.from({ length: rank }, (_, i) => i);
    const begins = order.map((a) => p[2 * a] ?? 0);
    const ends = order.map((a) => p[2 * a + 1] ?? 0);
    const pads = this.g.constant('pads', [2 * rank], BigInt64Array.from([...begins, ...ends].map(BigInt)), DataType.INT64);
    if (value === null && x.kind === 'quant' && isQuantized(outT) && sameQuant(x.qp, activationParams(outT))) {
      // Padding an int8 tensor pads with its zero point, the quantized 0.0.
      const zp = this.qparams(x.qp)[1];
      return this.move(op, x, outT, layout, (t) => this.g.add('Pad', [t, pads, zp], { mode: 'constant' }));
    }
    const inputs = [this.floatIn(x, layout), pads];
    if (value !== null) inputs.push(this.floatIn(value, 'nhwc'));
    return this.output(op, outT, this.g.add('Pad', inputs, { mode: 'constant' }), layout);
  }

  private resize(op: TfliteOperator, x: Val, outT: TfliteTensor): Val {
    const o = op.options;
    const bilinear = op.op === 'RESIZE_BILINEAR';
    const align = o?.bool(bilinear ? 2 : 0) ?? false;
    const half = o?.bool(bilinear ? 3 : 1) ?? false;
    // TF's nearest with half-pixel centres takes floor((x + 0.5) · in/out): ONNX half_pixel rounded with ties up.
    const mode = align ? 'align_corners' : half ? 'half_pixel' : 'asymmetric';
    const [n = 1, h = 1, w = 1, c = 1] = outT.shape;
    const sizes = this.g.constant('sizes', [4], BigInt64Array.from([n, c, h, w].map(BigInt)), DataType.INT64);
    const attrs = { mode: bilinear ? 'linear' : 'nearest', coordinate_transformation_mode: mode, ...(bilinear ? {} : { nearest_mode: half || align ? 'round_prefer_ceil' : 'floor' }) };
    const build = (t: string) => this.g.add('Resize', [t, '', '', sizes], attrs);
    return bilinear ? this.output(op, outT, build(this.floatIn(x, 'nchw')), 'nchw') : this.move(op, x, outT, 'nchw', build);
  }

  private stridedSlice(op: TfliteOperator, x: Val, ins: Array<Val | null>, outT: TfliteTensor): Val {
    const o = op.options;
    const arg = (i: number, what: string) => {
      const v = ins[i];
      if (v === null || v === undefined) throw unsupported(op, this.m, `its ${what} input is missing`);
      return this.ints(op, v);
    };
    const [begin, end, strides] = [arg(1, 'begin'), arg(2, 'end'), arg(3, 'strides')];
    if ((o?.int(2) ?? 0) !== 0 || (o?.int(3) ?? 0) !== 0) throw unsupported(op, this.m, 'ellipsis or new-axis masks');
    const [bm, em, sm] = [o?.int(0) ?? 0, o?.int(1) ?? 0, o?.int(4) ?? 0];
    const offset = o?.bool(5) ?? false;
    const starts: number[] = [];
    const ends: number[] = [];
    const steps: number[] = [];
    const counts: number[] = [];
    begin.forEach((b, i) => {
      const dim = x.shape[i]!;
      let step = strides[i] ?? 1;
      if (step === 0) throw unsupported(op, this.m, 'a stride of 0');
      // TensorFlow's rule: negative indices count from the end, then clamp to [0, dim] going forward and to
      // [-1, dim - 1] going backward, where -1 is "before the first element".
      const norm = (v: number) => (v < 0 ? v + dim : v);
      const clamp = (v: number) => (step > 0 ? Math.min(Math.max(v, 0), dim) : Math.min(Math.max(v, -1), dim - 1));
      let s = bm & (1 << i) ? (step > 0 ? 0 : dim - 1) : clamp(norm(b));
      const rawEnd = offset ? b + (end[i] ?? 0) : (end[i] ?? dim);
      let e = em & (1 << i) ? (step > 0 ? dim : -1) : clamp(norm(rawEnd));
      if (sm & (1 << i)) {
        s = norm(b);
        e = s + 1;
        step = 1;
      }
      counts.push(Math.max(0, Math.ceil((e - s) / step)));
      // ONNX reads a negative index from the end; "before the first element" is -dim - 1 there.
      starts.push(s < 0 ? -dim - 1 : s);
      ends.push(e < 0 ? -dim - 1 : e);
      steps.push(step);
    });
    const kept = counts.filter((_, i) => !(sm & (1 << i))).concat(x.shape.slice(begin.length));
    if (kept.includes(0)) throw unsupported(op, this.m, 'an empty slice');
    if (kept.join(',') !== outT.shape.join(',')) {
      throw new VisionpipeError('VP_MODEL_INVALID', `TFLite operator #${op.index} (STRIDED_SLICE) gives [${kept.join(', ')}], but the file says its output "${outT.name}" is [${outT.shape.join(', ')}]`, { value: outT.shape });
    }
    const c = (v: number[]) => this.g.constant('slice', [v.length], BigInt64Array.from(v.map(BigInt)), DataType.INT64);
    const axes = starts.map((_, i) => i);
    const shape = this.g.constant('slice_shape', [outT.shape.length], BigInt64Array.from(outT.shape.map(BigInt)), DataType.INT64);
    return this.move(op, x, outT, 'nhwc', (t) => this.g.add('Reshape', [this.g.add('Slice', [t, c(starts), c(ends), c(axes), c(steps)]), shape]));
  }
}

function floatVal(name: string, shape: number[], layout: Layout): Val {
  return { kind: 'float', name, layout, shape, dtype: DataType.FLOAT, views: new Map() };
}

function layoutOf(v: Val): Layout {
  return v.kind === 'const' || v.shape.length !== 4 ? 'nhwc' : v.layout;
}

function isQuantized(t: TfliteTensor): boolean {
  return t.quant !== null && t.quant.scale.length > 0 && (t.type === 'int8' || t.type === 'uint8' || t.type === 'int32' || t.type === 'int16');
}

function quantParams(t: TfliteTensor): QuantParams {
  const q = t.quant as TfliteQuantization;
  if (q.scale.length > 1 && t.shape[q.axis] !== q.scale.length) {
    throw new VisionpipeError('VP_MODEL_INVALID', `The TFLite tensor "${t.name}" has ${q.scale.length} scales along axis ${q.axis}, which has ${t.shape[q.axis] ?? 'no'} channels`, { value: t.shape });
  }
  const zeroPoint = q.zeroPoint.length === q.scale.length ? q.zeroPoint : Array.from(q.scale, (_, i) => q.zeroPoint[i] ?? q.zeroPoint[0] ?? 0);
  return { scale: q.scale, zeroPoint, axis: q.axis, type: t.type };
}

/**
 * An activation's quantization as emitted: TFLite's int8 activations become uint8 with the zero point moved by 128
 * (the same real values, the same rounding and clamping), so every activation is uint8 and every weight int8:
 * the U8S8 form onnxruntime's x86 kernels take without conversion (its own s8 → u8 rewrite only reaches
 * adjacent Q → DQ pairs, and left convolutions behind a shared or transposed int8 tensor in float).
 */
function activationParams(t: TfliteTensor): QuantParams {
  const qp = quantParams(t);
  return qp.type === 'int8' ? { ...qp, type: 'uint8', zeroPoint: qp.zeroPoint.map((z) => z + 128) } : qp;
}

function sameQuant(a: QuantParams, b: QuantParams): boolean {
  return a.type === b.type && a.scale.length === 1 && b.scale.length === 1 && a.scale[0] === b.scale[0] && a.zeroPoint[0] === b.zeroPoint[0];
}

type Typed = Float32Array | Int32Array | Int8Array | Uint8Array | BigInt64Array | Uint16Array;

/** A constant's values as a typed array of its own type (copied, so alignment never matters). */
function typedData(t: TfliteTensor): Typed {
  const bytes = Uint8Array.from(t.data ?? new Uint8Array(0));
  switch (t.type) {
    case 'float32':
      return new Float32Array(bytes.buffer, 0, bytes.byteLength >> 2);
    case 'int32':
      return new Int32Array(bytes.buffer, 0, bytes.byteLength >> 2);
    case 'int64':
      return new BigInt64Array(bytes.buffer, 0, bytes.byteLength >> 3);
    case 'int8':
      return new Int8Array(bytes.buffer);
    case 'uint8':
      return bytes;
    case 'float16':
      return new Uint16Array(bytes.buffer, 0, bytes.byteLength >> 1);
    default:
      throw new VisionpipeError('VP_MODEL_UNSUPPORTED', `The TFLite constant "${t.name}" is ${t.type}`, { value: t.type, expected: 'float32, float16, int8, uint8, int32 or int64 constants' });
  }
}

/** A constant's float values: float32 as is, float16 widened, quantized ones dequantized with their scales. */
function constFloat(v: Extract<Val, { kind: 'const' }>, op: TfliteOperator | undefined, m: TfliteModel): Float32Array {
  if (v.float !== undefined) return v.float;
  const t = v.tensor;
  const data = typedData(t);
  if (t.type === 'float32') return data as Float32Array;
  if (t.type === 'float16') return Float32Array.from(data as Uint16Array, halfToFloat);
  if (isQuantized(t)) {
    const { scale, zeroPoint, axis } = quantParams(t);
    const inner = t.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const channels = scale.length;
    return Float32Array.from(data as ArrayLike<number>, (q, i) => {
      const c = channels === 1 ? 0 : Math.floor(i / inner) % channels;
      return scale[c]! * (Number(q) - zeroPoint[c]!);
    });
  }
  if (op !== undefined) throw unsupported(op, m, `a ${t.type} constant "${t.name}" where float values are needed`);
  return Float32Array.from(data as ArrayLike<number>, Number);
}

/** IEEE half-precision bits → number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Reorders an N-d row-major array: out dims = perm.map(p => shape[p]). */
function permute<T extends Typed>(data: T, shape: number[], perm: number[]): T {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i]!;
  }
  const strideOfOut = perm.map((p) => inStrides[p]!);
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < data.length; o++) {
    let src = 0;
    for (let d = 0; d < rank; d++) src += idx[d]! * strideOfOut[d]!;
    (out as unknown as number[])[o] = (data as unknown as number[])[src]!;
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d]! < outShape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Bumped when the converter's output changes, so cached conversions are made again. */
export const TFLITE_CONVERTER_VERSION = 2;

/** TFLite tensor names can be long ";"-joined lists of fused TF names; keep the first for readability. */
function safeName(name: string): string {
  return (name.split(';')[0] ?? name).replace(/[^\w/.-]/g, '_').slice(0, 80) || 'const';
}

function unsupported(op: TfliteOperator, m: TfliteModel, why: string): VisionpipeError {
  const out = m.tensors[op.outputs[0] ?? -1]?.name ?? '?';
  return new VisionpipeError('VP_MODEL_UNSUPPORTED', `Cannot convert TFLite operator #${op.index} (${op.op}, writing tensor "${out}"): ${why}`, {
    value: op.op,
    hint: 'Supported: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD, SUB, MUL, DIV, MAXIMUM, MINIMUM, AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, RESHAPE, SQUEEZE, EXPAND_DIMS, SOFTMAX, LOGISTIC, TANH, RELU, RELU6, RELU_N1_TO_1, HARD_SWISH, PAD, PADV2, CONCATENATION, QUANTIZE, DEQUANTIZE, RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR, TRANSPOSE, STRIDED_SLICE, GATHER, ARG_MAX (README: "TFLite models").',
  });
}
