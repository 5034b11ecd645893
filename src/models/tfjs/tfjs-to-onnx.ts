import { VisionpipeError } from '../../errors.js';
import { depthwiseToOnnx, hwioToOihw, windowGeometry } from '../keras/keras-layer-math.js';
import { DataType, OnnxGraph } from '../onnx/onnx-graph.js';
import type { TfAttr, TfConst, TfGraph, TfNode } from './read-tfjs-graph.js';

type DType = 'float32' | 'int32' | 'bool';
interface Val {
  name: string;
  shape: number[];
  dtype: DType;
  /** Set for constants: their values (for shapes, axes, sizes). */
  value?: TfConst;
}

const ONNX_TYPE: Record<DType, number> = { float32: DataType.FLOAT, int32: DataType.INT32, bool: 9 };
const TF_TYPE: Record<string, DType> = { DT_FLOAT: 'float32', DT_INT32: 'int32', DT_BOOL: 'bool' };

/**
 * Converts a TF.js graph model to ONNX. Tensors stay NHWC as in TensorFlow, so broadcasting, concat axes,
 * reshapes and gathers keep their meaning; each spatial op (Conv, depthwise Conv, pooling, resize) is wrapped
 * in NHWC↔NCHW transposes, which onnxruntime's transpose optimiser cancels between neighbours.
 * All shapes must be static (a fixed-size image input). An unsupported op stops the conversion, naming it.
 */
export function tfjsToOnnx(tf: TfGraph, name = 'tfjs'): { graph: OnnxGraph; inputShape: number[]; outputShapes: number[][] } {
  const g = new OnnxGraph(name);
  const vals = new Map<string, Val>();
  const get = (ref: string, node: TfNode): Val => {
    const [base = ref, idx] = ref.split(':');
    const key = idx === undefined || idx === '0' ? base : `${base}:${idx}`;
    const v = vals.get(key) ?? constVal(g, vals, tf.consts, base);
    if (v === undefined) throw unsupported(node, `its input "${ref}" is unknown`);
    return v;
  };
  for (const input of tf.inputs) {
    if (input.shape.some((d) => !(d > 0))) throw new VisionpipeError('VP_MODEL_UNSUPPORTED', 'Only fixed-size inputs can be converted', { value: input });
    g.inputs.push({ name: 'input', dims: input.shape });
    vals.set(input.name, { name: 'input', shape: input.shape, dtype: 'float32' });
  }
  for (const node of tf.nodes) {
    if (node.op === 'Placeholder' || node.op === 'Const') continue;
    const ins = node.inputs.map((r) => get(r, node));
    const set = (v: Val, index = 0) => vals.set(index === 0 ? node.name : `${node.name}:${index}`, v);
    const x = ins[0]!;
    switch (node.op) {
      case 'Identity':
        set(x);
        break;
      case '_FusedConv2D':
      case 'Conv2D':
      case 'FusedDepthwiseConv2dNative':
      case 'DepthwiseConv2dNative':
        set(conv(g, node, ins));
        break;
      case 'Add':
      case 'AddV2':
      case 'BiasAdd':
      case 'Mul':
      case 'Sub':
      case 'RealDiv':
      case 'Maximum':
      case 'Minimum':
      case 'Equal': {
        const op = { Add: 'Add', AddV2: 'Add', BiasAdd: 'Add', Mul: 'Mul', Sub: 'Sub', RealDiv: 'Div', Maximum: 'Max', Minimum: 'Min', Equal: 'Equal' }[node.op]!;
        const [a, b] = [x, ins[1]!];
        set({ name: g.add(op, [a.name, b.name]), shape: broadcast(a.shape, b.shape, node), dtype: op === 'Equal' ? 'bool' : a.dtype });
        break;
      }
      case 'FloorDiv':
      case 'FloorMod': {
        const [a, b] = [x, ins[1]!];
        if (a.dtype !== 'int32') throw unsupported(node, 'float floor division');
        // Integer Div truncates; indexes here are non-negative, where that equals floor. Mod with fmod=0 is floor-mod.
        const out = node.op === 'FloorDiv' ? g.add('Div', [a.name, b.name]) : g.add('Mod', [a.name, b.name], { fmod: 0 });
        set({ name: out, shape: broadcast(a.shape, b.shape, node), dtype: 'int32' });
        break;
      }
      case 'Relu':
      case 'Sigmoid':
      case 'Tanh':
        set({ name: g.add(node.op, [x.name]), shape: x.shape, dtype: x.dtype });
        break;
      case 'Relu6':
        set({ name: clip6(g, x.name), shape: x.shape, dtype: 'float32' });
        break;
      case 'Mean': {
        const axes = intsOf(ins[1]!, node).map((a) => (a < 0 ? a + x.shape.length : a));
        const keep = node.attr['keep_dims']?.b === true;
        const shape = keep ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
        set({ name: g.add('ReduceMean', [x.name], { axes, keepdims: keep ? 1 : 0 }), shape, dtype: 'float32' });
        break;
      }
      case 'MaxPool':
      case 'AvgPool': {
        const k = ints(node.attr['ksize']);
        const s = ints(node.attr['strides']);
        const geo = spatial(node, x.shape, [k[1] ?? 1, k[2] ?? 1], [s[1] ?? 1, s[2] ?? 1], [1, 1]);
        const op = node.op === 'MaxPool' ? 'MaxPool' : 'AveragePool';
        const y = nchw(g, x.name, (t) => g.add(op, [t], { kernel_shape: [k[1] ?? 1, k[2] ?? 1], strides: [s[1] ?? 1, s[2] ?? 1], pads: geo.pads }));
        set({ name: y, shape: [x.shape[0]!, geo.h, geo.w, x.shape[3]!], dtype: 'float32' });
        break;
      }
      case 'ResizeBilinear':
      case 'ResizeNearestNeighbor': {
        const [h = 0, w = 0] = intsOf(ins[1]!, node);
        const align = node.attr['align_corners']?.b === true;
        const half = node.attr['half_pixel_centers']?.b === true;
        const mode = align ? 'align_corners' : half ? (node.op === 'ResizeBilinear' ? 'half_pixel' : 'tf_half_pixel_for_nn') : 'asymmetric';
        const sizes = g.constant(`${node.name}_sizes`, [4], BigInt64Array.from([x.shape[0]!, x.shape[3]!, h, w].map(BigInt)), DataType.INT64);
        const attrs = { mode: node.op === 'ResizeBilinear' ? 'linear' : 'nearest', coordinate_transformation_mode: mode, ...(node.op === 'ResizeNearestNeighbor' ? { nearest_mode: half ? 'round_prefer_ceil' : 'floor' } : {}) };
        const y = nchw(g, x.name, (t) => g.add('Resize', [t, '', '', sizes], attrs));
        set({ name: y, shape: [x.shape[0]!, h, w, x.shape[3]!], dtype: 'float32' });
        break;
      }
      case 'ConcatV2': {
        const parts = ins.slice(0, -1);
        const rank = parts[0]!.shape.length;
        const axisRaw = intsOf(ins.at(-1)!, node)[0] ?? 0;
        const axis = axisRaw < 0 ? axisRaw + rank : axisRaw;
        const shape = [...parts[0]!.shape];
        shape[axis] = parts.reduce((a, p) => a + (p.shape[axis] ?? 0), 0);
        set({ name: g.add('Concat', parts.map((p) => p.name), { axis }), shape, dtype: parts[0]!.dtype });
        break;
      }
      case 'Reshape': {
        const target = intsOf(ins[1]!, node);
        const total = x.shape.reduce((a, b) => a * b, 1);
        const known = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
        const shape = target.map((d) => (d === -1 ? total / known : d));
        const shapeName = g.constant(`${node.name}_shape`, [shape.length], BigInt64Array.from(shape.map(BigInt)), DataType.INT64);
        set({ name: g.add('Reshape', [x.name, shapeName]), shape, dtype: x.dtype });
        break;
      }
      case 'ExpandDims': {
        const raw = intsOf(ins[1]!, node)[0] ?? 0;
        const axis = raw < 0 ? raw + x.shape.length + 1 : raw;
        const axes = g.constant(`${node.name}_axes`, [1], BigInt64Array.of(BigInt(axis)), DataType.INT64);
        const shape = [...x.shape.slice(0, axis), 1, ...x.shape.slice(axis)];
        set({ name: g.add('Unsqueeze', [x.name, axes]), shape, dtype: x.dtype });
        break;
      }
      case 'Cast': {
        const to = TF_TYPE[node.attr['DstT']?.type ?? ''];
        if (to === undefined) throw unsupported(node, `cast to ${node.attr['DstT']?.type}`);
        set({ name: g.add('Cast', [x.name], { to: ONNX_TYPE[to] }), shape: x.shape, dtype: to });
        break;
      }
      case 'TopKV2': {
        const k = intsOf(ins[1]!, node)[0] ?? 1;
        const kName = g.constant(`${node.name}_k`, [1], BigInt64Array.of(BigInt(k)), DataType.INT64);
        const values = g.fresh('topk_values');
        const indices64 = g.fresh('topk_indices');
        g.nodes.push({ op: 'TopK', inputs: [x.name, kName], outputs: [values, indices64], name: g.fresh('TopK'), attrs: { axis: -1, largest: 1, sorted: 1 } });
        const shape = [...x.shape.slice(0, -1), k];
        set({ name: values, shape, dtype: 'float32' });
        set({ name: g.add('Cast', [indices64], { to: DataType.INT32 }), shape, dtype: 'int32' }, 1);
        break;
      }
      case 'GatherV2': {
        const axisRaw = intsOf(ins[2]!, node)[0] ?? 0;
        const axis = axisRaw < 0 ? axisRaw + x.shape.length : axisRaw;
        if (Number(node.attr['batch_dims']?.i ?? 0) !== 0) throw unsupported(node, 'batch_dims ≠ 0');
        const idx = ins[1]!;
        const shape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
        set({ name: g.add('Gather', [x.name, idx.name], { axis }), shape, dtype: x.dtype });
        break;
      }
      case 'StridedSlice':
        set(stridedSlice(g, node, x, ins));
        break;
      case 'Pad':
      case 'PadV2': {
        const p = intsOf(ins[1]!, node);
        const rank = x.shape.length;
        const begins = Array.from({ length: rank }, (_, i) => p[2 * i] ?? 0);
        const endsP = Array.from({ length: rank }, (_, i) => p[2 * i + 1] ?? 0);
        const pads = g.constant(`${node.name}_pads`, [2 * rank], BigInt64Array.from([...begins, ...endsP].map(BigInt)), DataType.INT64);
        const inputs = [x.name, pads, ...(node.op === 'PadV2' ? [ins[2]!.name] : [])];
        set({ name: g.add('Pad', inputs, { mode: 'constant' }), shape: x.shape.map((d, i) => d + begins[i]! + endsP[i]!), dtype: x.dtype });
        break;
      }
      case 'MatMul':
      case '_FusedMatMul': {
        const [a, b] = [x, ins[1]!];
        const ta = node.attr['transpose_a']?.b === true;
        const tb = node.attr['transpose_b']?.b === true;
        const aName = ta ? g.add('Transpose', [a.name], { perm: [1, 0] }) : a.name;
        const bName = tb ? g.add('Transpose', [b.name], { perm: [1, 0] }) : b.name;
        const rows = ta ? a.shape[1]! : a.shape[0]!;
        const cols = tb ? b.shape[0]! : b.shape[1]!;
        let out = g.add('MatMul', [aName, bName]);
        const fused = (node.attr['fused_ops']?.list?.s ?? []).map((b64) => Buffer.from(b64, 'base64').toString());
        for (const [i, op] of fused.entries()) {
          if (op === 'BiasAdd' && i === 0) out = g.add('Add', [out, ins[2]!.name]);
          else if (op === 'Relu') out = g.add('Relu', [out]);
          else if (op === 'Relu6') out = clip6(g, out);
          else throw unsupported(node, `fused op ${op}`);
        }
        set({ name: out, shape: [rows, cols], dtype: 'float32' });
        break;
      }
      case 'Softmax':
        set({ name: g.add('Softmax', [x.name], { axis: -1 }), shape: x.shape, dtype: 'float32' });
        break;
      default:
        throw unsupported(node, 'this op is not supported by the TF.js importer');
    }
  }
  const outputShapes: number[][] = [];
  tf.outputs.forEach((o, i) => {
    const v = vals.get(o);
    if (v === undefined) throw new VisionpipeError('VP_MODEL_INVALID', `The graph has no output "${o}"`, { value: o });
    const outName = i === 0 ? 'output' : `output_${i}`;
    g.nodes.push({ op: 'Identity', inputs: [v.name], outputs: [outName], name: g.fresh('out') });
    g.outputs.push({ name: outName, dims: v.shape, dataType: ONNX_TYPE[v.dtype] });
    outputShapes.push(v.shape);
  });
  g.pruneInitializers();
  return { graph: g, inputShape: tf.inputs[0]?.shape ?? [], outputShapes };
}

/** Constants become initializers on first use (TF.js keeps their values in the weights manifest). */
function constVal(g: OnnxGraph, vals: Map<string, Val>, consts: Map<string, TfConst>, name: string): Val | undefined {
  const c = consts.get(name);
  if (c === undefined) return undefined;
  const v: Val = { name: g.constant(name, c.shape, c.data, c.dtype === 'int32' ? DataType.INT32 : DataType.FLOAT), shape: c.shape, dtype: c.dtype, value: c };
  vals.set(name, v);
  return v;
}

function conv(g: OnnxGraph, node: TfNode, ins: Val[]): Val {
  const [x, filter] = ins as [Val, Val];
  if (filter.value === undefined) throw unsupported(node, 'a filter that is not a constant');
  const depthwise = node.op.includes('Depthwise');
  const [kh = 1, kw = 1, cin = 1, last = 1] = filter.shape;
  const cout = depthwise ? cin * last : last;
  const s = ints(node.attr['strides']);
  const d = ints(node.attr['dilations']);
  const stride: [number, number] = [s[1] ?? 1, s[2] ?? 1];
  const dil: [number, number] = [d[1] ?? 1, d[2] ?? 1];
  const geo = spatial(node, x.shape, [kh, kw], stride, dil);
  // TF keeps filters as [kh, kw, cin, cout] (depthwise: [kh, kw, cin, multiplier]), like Keras.
  const src = filter.value.data as Float32Array;
  const w = depthwise ? depthwiseToOnnx(src, filter.shape) : hwioToOihw(src, filter.shape);
  const wName = g.constant(`${node.name}_W`, [cout, depthwise ? 1 : cin, kh, kw], w);
  const fused = (node.attr['fused_ops']?.list?.s ?? []).map((b64) => Buffer.from(b64, 'base64').toString());
  const inputs = [x.name, wName];
  let rest = fused;
  if (fused[0] === 'BiasAdd') {
    const bias = ins[2];
    if (bias?.value === undefined) throw unsupported(node, 'a fused bias that is not a constant');
    inputs.push(bias.name);
    rest = fused.slice(1);
  } else if (fused.length > 0) throw unsupported(node, `fused ops ${fused.join('+')}`);
  const attrs = { kernel_shape: [kh, kw], strides: stride, dilations: dil, pads: geo.pads, group: depthwise ? cin : 1 };
  const y = nchw(g, x.name, (t) => {
    let out = g.add('Conv', [t, ...inputs.slice(1)], attrs);
    for (const op of rest) {
      if (op === 'Relu') out = g.add('Relu', [out]);
      else if (op === 'Relu6') out = clip6(g, out);
      else throw unsupported(node, `fused op ${op}`);
    }
    return out;
  });
  return { name: y, shape: [x.shape[0]!, geo.h, geo.w, cout], dtype: 'float32' };
}

function stridedSlice(g: OnnxGraph, node: TfNode, x: Val, ins: Val[]): Val {
  const [begin, end, strides] = [intsOf(ins[1]!, node), intsOf(ins[2]!, node), intsOf(ins[3]!, node)];
  const mask = (k: string) => Number(node.attr[k]?.i ?? 0);
  if (mask('ellipsis_mask') !== 0 || mask('new_axis_mask') !== 0) throw unsupported(node, 'ellipsis or new-axis masks');
  const [bm, em, sm] = [mask('begin_mask'), mask('end_mask'), mask('shrink_axis_mask')];
  const starts: number[] = [];
  const ends: number[] = [];
  const shape: number[] = [];
  begin.forEach((b, i) => {
    const dim = x.shape[i]!;
    const step = strides[i] ?? 1;
    if (step !== 1) throw unsupported(node, 'strides other than 1');
    let s = bm & (1 << i) ? 0 : b < 0 ? b + dim : b;
    let e = em & (1 << i) ? dim : (end[i] ?? dim) < 0 ? (end[i] ?? dim) + dim : (end[i] ?? dim);
    if (sm & (1 << i)) e = s + 1;
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, s), dim);
    starts.push(s);
    ends.push(e);
    shape.push(e - s);
  });
  const c = (n: string, v: number[]) => g.constant(`${node.name}_${n}`, [v.length], BigInt64Array.from(v.map(BigInt)), DataType.INT64);
  const axes = starts.map((_, i) => i);
  let out = g.add('Slice', [x.name, c('starts', starts), c('ends', ends), c('axes', axes)]);
  let outShape = [...shape, ...x.shape.slice(begin.length)];
  const shrink = axes.filter((i) => sm & (1 << i));
  if (shrink.length > 0) {
    out = g.add('Squeeze', [out, c('squeeze', shrink)]);
    outShape = outShape.filter((_, i) => !shrink.includes(i));
  }
  return { name: out, shape: outShape, dtype: x.dtype };
}

function nchw(g: OnnxGraph, input: string, body: (nchwInput: string) => string): string {
  const t = g.add('Transpose', [input], { perm: [0, 3, 1, 2] });
  return g.add('Transpose', [body(t)], { perm: [0, 2, 3, 1] });
}

function clip6(g: OnnxGraph, input: string): string {
  return g.clip(input, 0, 6, 'relu6');
}

function spatial(node: TfNode, shape: number[], k: [number, number], s: [number, number], d: [number, number]) {
  const padding = Buffer.from(node.attr['padding']?.s ?? '', 'base64').toString();
  const [, h = 0, w = 0] = shape;
  const geometry = windowGeometry([h, w], k, s, d, padding.toLowerCase());
  if (geometry === null) throw unsupported(node, `padding ${padding || '(none)'}`);
  return geometry;
}

function broadcast(a: number[], b: number[], node: TfNode): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw unsupported(node, `shapes [${a}] and [${b}] do not broadcast`);
    return Math.max(x, y);
  });
}

function ints(a: TfAttr | undefined): number[] {
  return (a?.list?.i ?? []).map(Number);
}

function intsOf(v: Val, node: TfNode): number[] {
  if (v.value === undefined) throw unsupported(node, 'a shape / axis argument that is computed at run time');
  return Array.from(v.value.data, Number);
}

function unsupported(node: TfNode, why: string): VisionpipeError {
  return new VisionpipeError('VP_MODEL_UNSUPPORTED', `Cannot convert node "${node.name}" (${node.op}): ${why}`, { value: node.op });
}
