import { VisionpipeError } from '../../errors.js';
import { DataType, OnnxGraph, type AttrValue, type OnnxNode, type ValueInfo } from './onnx-graph.js';

/** A value of the model seen at batch 1: its shape, ONNX element type and (small integer tensors only) its values. */
export interface ProbedTensor {
  dims: number[];
  dataType: number;
  /** Set for integer tensors of at most 64 elements (shapes, axes, sizes): what rewrites need to read. */
  ints?: number[];
}

/** What `withDynamicBatch` made of a graph, for logs and the closing report. */
export interface BatchPlan {
  /** Nodes that run once on the whole batch. */
  batchedNodes: number;
  /** Nodes that run once per image, inside a Scan over the batch (the ops whose meaning depends on batch 1). */
  perImageNodes: number;
  /** The first node that could not take a batch, and why (null: the whole graph is batched). */
  firstPerImage: { node: string; op: string; why: string } | null;
}

const ELEMENTWISE = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Mean', 'Sum', 'Mod', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual',
  'And', 'Or', 'Xor', 'Not', 'Where', 'Cast', 'Identity', 'Relu', 'LeakyRelu', 'PRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh',
  'Clip', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Neg', 'Abs', 'Floor', 'Ceil', 'Round', 'Erf', 'Elu', 'Selu', 'Softplus', 'Softsign',
  'Sign', 'IsNaN', 'Sin', 'Cos', 'Gelu', 'QuickGelu',
]);
/** Ops on NCHW-style images whose only batched input is the first, and whose batch stays on axis 0. */
const PER_IMAGE_SPATIAL = new Set([
  'Conv', 'ConvTranspose', 'MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'BatchNormalization',
  'InstanceNormalization', 'LRN', 'DepthToSpace', 'SpaceToDepth', 'QLinearConv', 'ConvInteger', 'QLinearAveragePool',
  'QLinearGlobalAveragePool', 'QuantizeLinear', 'DequantizeLinear', 'Dropout',
]);
const REDUCE = new Set(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSumExp', 'ReduceSumSquare']);
/** Ops whose output size depends on the values: per image, their results could not be stacked into one batch. */
const DATA_DEPENDENT_SHAPE = new Set(['NonZero', 'NonMaxSuppression', 'Compress', 'Unique', 'StringSplit']);
/** Ops with subgraphs, which may read outer values implicitly (not listed as inputs). */
const CONTROL_FLOW = new Set(['If', 'Loop', 'Scan', 'SequenceMap']);
const COMPUTE_OPS = new Set(['Conv', 'ConvTranspose', 'QLinearConv', 'ConvInteger', 'MatMul', 'Gemm', 'QGemm', 'MatMulInteger', 'QLinearMatMul']);

const INT64_MAX = 9223372036854775807n;

/**
 * Rewrites a graph made for batch 1 (the converters' output, a fixed-size image input) to take a batch of N images:
 * every node whose meaning does not depend on the batch being 1 — convolutions, pooling, elementwise math, resizes,
 * reshapes that keep the leading 1 — runs once on the whole batch; from the first node that would mix images
 * (a reshape that folds the batch into rows, a gather over the flattened batch, a Shape, anything not known to be
 * per image) the rest of the graph runs unchanged, once per image, as the body of an ONNX Scan over the batch axis.
 * A detector's backbone batches; its decoding head (CenterNet's TopK / BatchGather) runs per image.
 *
 * `probe` holds every value's shape at batch 1 (from one run of the original graph). The caller must still compare
 * the result with the original on real inputs (see convert-model's asBatchedDescriptor): this pass decides from
 * shapes and a table of op semantics, and an op it misjudges would show there.
 * Throws VP_MODEL_UNSUPPORTED when nothing worth batching comes before the per-image part.
 */
export function withDynamicBatch(g: OnnxGraph, probe: ReadonlyMap<string, ProbedTensor>): { graph: OnnxGraph; plan: BatchPlan } {
  if (g.inputs.length !== 1) throw unsupported(`it has ${g.inputs.length} inputs (batching takes models with one image input)`);
  const input = g.inputs[0]!;
  if (input.dims[0] !== 1) throw unsupported(`its input's batch is ${input.dims[0] ?? 'already dynamic'}, not 1`);
  const flow = g.nodes.find((n) => CONTROL_FLOW.has(n.op));
  if (flow !== undefined) throw unsupported(`it has control flow (${flow.op} "${flow.name}")`);
  const dynamicOut = g.outputs.find((o) => o.dims.slice(1).some((d) => d === null));
  if (dynamicOut !== undefined) throw unsupported(`its output "${dynamicOut.name}" has a size that depends on the picture`);
  const shape = (t: string): number[] => {
    const init = g.initializers.get(t);
    if (init !== undefined) return init.dims;
    const p = probe.get(t);
    if (p === undefined) throw unsupported(`the value "${t}" was not measured`);
    return p.dims;
  };
  const constant = (t: string) => t === '' || g.initializers.has(t) || !batched.has(t);
  const intsOf = (t: string): number[] | undefined => {
    const init = g.initializers.get(t);
    if (init !== undefined && (init.data instanceof BigInt64Array || init.data instanceof Int32Array)) return Array.from(init.data, Number);
    return probe.get(t)?.ints;
  };

  // Which values carry the batch (depend on the input), and which nodes run on the whole batch.
  const batched = new Set<string>([input.name]);
  const perImage = new Set<OnnxNode>();
  const perImageOutputs = new Set<string>();
  const rewrites = new Map<OnnxNode, (out: OnnxGraph) => OnnxNode[]>();
  let first: BatchPlan['firstPerImage'] = null;
  for (const node of g.nodes) {
    const feeds = node.inputs.filter((t) => t !== '' && batched.has(t));
    if (feeds.length === 0) continue; // constant folding material: stays outside, read by whoever needs it
    for (const t of node.outputs) batched.add(t);
    const fromPerImage = node.inputs.some((t) => perImageOutputs.has(t));
    let verdict = fromPerImage ? 'follows a per-image node' : judge(node, g, shape, constant, intsOf, rewrites);
    // Whatever the table says, a batched node's outputs must keep the batch in front.
    if (verdict === null && node.outputs.some((t) => t !== '' && shape(t)[0] !== 1)) {
      verdict = 'its output does not lead with the batch';
      rewrites.delete(node);
    }
    if (verdict !== null && DATA_DEPENDENT_SHAPE.has(node.op)) throw unsupported(`${node.op} "${node.name}" makes outputs whose size depends on the picture`);
    if (verdict !== null) {
      perImage.add(node);
      for (const t of node.outputs) perImageOutputs.add(t);
      first ??= { node: node.name, op: node.op, why: verdict };
    }
  }
  // Per-image nodes that no output needs are left out (a Scan must have outputs).
  const needed = new Set(g.outputs.map((o) => o.name));
  const dropped = new Set<OnnxNode>();
  for (const n of [...g.nodes].reverse()) {
    if (n.outputs.some((t) => needed.has(t))) for (const t of n.inputs) needed.add(t);
    else if (perImage.has(n)) {
      perImage.delete(n);
      dropped.add(n);
    }
  }
  const batchedNodes = g.nodes.filter((n) => !perImage.has(n) && n.inputs.some((t) => batched.has(t)));
  if (!batchedNodes.some((n) => COMPUTE_OPS.has(n.op))) throw unsupported(`nothing worth batching comes before ${first?.op ?? 'the end'} (${first?.why ?? ''})`);
  for (const o of g.outputs) {
    const dims = shape(o.name);
    if (batched.has(o.name) && dims[0] !== 1) throw unsupported(`its output "${o.name}" has a leading ${dims[0]}, not the batch`);
    if (!batched.has(o.name)) throw unsupported(`its output "${o.name}" does not depend on the image`);
  }

  const out = new OnnxGraph(g.name);
  out.adoptCounter(g);
  out.opset = g.opset;
  out.initializers = new Map(g.initializers);
  out.inputs = [{ ...input, dims: [null, ...input.dims.slice(1)] }];
  out.outputs = g.outputs.map((o) => ({ ...o, dims: [null, ...shape(o.name).slice(1)] }));
  for (const node of g.nodes) {
    if (perImage.has(node) || dropped.has(node)) continue;
    const rewrite = rewrites.get(node);
    out.nodes.push(...(rewrite === undefined ? [node] : rewrite(out)));
  }
  if (perImage.size > 0) out.nodes.push(...perImageScan(g, out, perImage, perImageOutputs, batched, probe));
  // Constants the rewrites replaced; the Scan body reads initializers from this graph, so its nodes count as readers.
  const read = new Set([...out.nodes, ...perImage].flatMap((n) => n.inputs));
  for (const name of [...out.initializers.keys()]) if (!read.has(name)) out.initializers.delete(name);
  return { graph: out, plan: { batchedNodes: batchedNodes.length, perImageNodes: perImage.size, firstPerImage: first } };
}

/**
 * Why `node` cannot run on the whole batch (null: it can). Every input that carries the batch has it on axis 0
 * with size 1 at batch 1. Nodes that need a constant of theirs changed register a rewrite.
 */
function judge(
  node: OnnxNode,
  g: OnnxGraph,
  shape: (t: string) => number[],
  constant: (t: string) => boolean,
  intsOf: (t: string) => number[] | undefined,
  rewrites: Map<OnnxNode, (out: OnnxGraph) => OnnxNode[]>,
): string | null {
  const ins = node.inputs;
  const x = ins[0] ?? '';
  const rank = (t: string) => shape(t).length;
  const attr = (name: string, fallback: number): number => (typeof node.attrs?.[name] === 'number' ? (node.attrs[name] as number) : fallback);
  const ints = (name: string): number[] | undefined => (Array.isArray(node.attrs?.[name]) ? (node.attrs[name] as number[]) : undefined);
  const norm = (axis: number, r: number) => (axis < 0 ? axis + r : axis);
  for (const t of ins) if (t !== '' && !constant(t) && shape(t)[0] !== 1) return `its input "${t}" does not lead with the batch`;
  const onlyFirstBatched = ins.slice(1).every(constant);
  if (ELEMENTWISE.has(node.op)) {
    const outRank = rank(node.outputs[0]!);
    for (const t of ins) {
      if (t === '') continue;
      if (!constant(t) && rank(t) !== outRank) return 'a batched operand is broadcast to a higher rank (the batch would move)';
      if (constant(t) && rank(t) === outRank && shape(t)[0] !== 1) return 'a constant operand has its own leading dimension';
    }
    return null;
  }
  if (PER_IMAGE_SPATIAL.has(node.op)) {
    if (!onlyFirstBatched) return 'its weights, scales or second input depend on the image';
    const perChannel = (node.op === 'QuantizeLinear' || node.op === 'DequantizeLinear') && shape(ins[1]!).length > 0;
    return perChannel && norm(attr('axis', 1), rank(x)) === 0 ? 'it is quantized per batch entry' : null;
  }
  if (!onlyFirstBatched && !['Concat', 'Gather'].includes(node.op)) return 'more than its first input depends on the image';
  switch (node.op) {
    case 'Softmax':
    case 'LogSoftmax':
    case 'Hardmax':
      return norm(attr('axis', -1), rank(x)) === 0 ? 'it normalises over the batch axis' : null;
    case 'ArgMax':
    case 'ArgMin':
      return norm(attr('axis', 0), rank(x)) === 0 ? 'it reduces the batch axis' : null;
    case 'TopK':
      return norm(attr('axis', -1), rank(x)) === 0 ? 'it sorts along the batch axis' : null;
    case 'Flatten':
      return attr('axis', 1) === 1 ? null : 'it flattens the batch together with other axes';
    case 'Transpose': {
      const perm = ints('perm');
      return perm !== undefined && perm[0] === 0 ? null : 'it moves the batch axis';
    }
    case 'Concat':
    case 'Split': {
      if (node.op === 'Concat' && !ins.every((t) => !constant(t))) return 'it concatenates a constant (which has no batch)';
      return norm(attr('axis', 0), rank(x)) === 0 ? `it ${node.op === 'Concat' ? 'concatenates' : 'splits'} along the batch axis` : null;
    }
    case 'Squeeze':
    case 'Unsqueeze': {
      const axes = ints('axes') ?? (ins[1] ? intsOf(ins[1]) : undefined);
      if (axes === undefined) return 'its axes are not known (a Squeeze without axes drops the batch)';
      const r = node.op === 'Squeeze' ? rank(x) : rank(node.outputs[0]!);
      return axes.some((a) => norm(a, r) === 0) ? 'it adds or removes the batch axis' : null;
    }
    case 'Gather': {
      if (!constant(x) && constant(ins[1] ?? '')) return norm(attr('axis', 0), rank(x)) === 0 ? 'it gathers along the batch axis' : null;
      if (constant(x) && !constant(ins[1] ?? '')) return norm(attr('axis', 0), rank(x)) === 0 ? null : 'its batched indices go into a middle axis';
      return 'both its data and its indices depend on the image';
    }
    case 'MatMul':
      return rank(x) >= 2 && rank(ins[1]!) <= 2 ? null : 'a batched matrix product';
    case 'Gemm':
      return attr('transA', 0) === 0 ? null : 'its first matrix is transposed (the batch is its columns)';
    case 'Reshape': {
      const target = shape(node.outputs[0]!);
      if (target[0] !== 1) return 'it folds the batch into another axis';
      if (attr('allowzero', 0) !== 0) return 'allowzero reshape';
      rewrites.set(node, (out) => {
        const dims = out.constant(`${node.name}_batched_shape`, [target.length], BigInt64Array.from([0n, ...target.slice(1).map(BigInt)]), DataType.INT64);
        return [{ ...node, inputs: [x, dims] }];
      });
      return null;
    }
    case 'Pad': {
      const pads = ins[1] ? intsOf(ins[1]) : ints('pads');
      const r = rank(x);
      if (pads === undefined || ins[3]) return 'its pads are not known';
      return pads[0] === 0 && pads[r] === 0 ? null : 'it pads the batch axis';
    }
    case 'Tile': {
      const reps = ins[1] ? intsOf(ins[1]) : undefined;
      return reps !== undefined && reps[0] === 1 ? null : 'it repeats along the batch axis';
    }
    case 'Expand': {
      const target = ins[1] ? intsOf(ins[1]) : undefined;
      return target !== undefined && target.length === rank(x) && target[0] === 1 ? null : 'it may move the batch axis';
    }
    case 'Slice': {
      const starts = intsOf(ins[1] ?? '');
      const ends = intsOf(ins[2] ?? '');
      const axes = ins[3] ? intsOf(ins[3]) : starts?.map((_, i) => i);
      const steps = ins[4] ? intsOf(ins[4]) : starts?.map(() => 1);
      if (starts === undefined || ends === undefined || axes === undefined || steps === undefined) return 'its bounds are not known';
      const k = axes.findIndex((a) => norm(a, rank(x)) === 0);
      if (k < 0) return null;
      if (steps[k] !== 1 || starts[k] !== 0 || ends[k]! < 1) return 'it slices the batch axis';
      // The batch axis kept whole: its end becomes "to the end" so every image stays.
      rewrites.set(node, (out) => {
        const e = BigInt64Array.from(ends.map(BigInt));
        e[k] = INT64_MAX;
        return [{ ...node, inputs: [x, ins[1]!, out.constant(`${node.name}_batched_ends`, [e.length], e, DataType.INT64), ...ins.slice(3)] }];
      });
      return null;
    }
    case 'Resize': {
      const scales = ins[2] ? g.initializers.get(ins[2]) : undefined;
      if (ins[3]) {
        const sizes = intsOf(ins[3]);
        if (sizes === undefined || sizes[0] !== 1) return 'its output sizes are not known';
        const inDims = shape(x);
        const factors = sizes.map((n, i) => Math.fround(n / (inDims[i] ?? 1)));
        if (factors.every((f, i) => Math.floor((inDims[i] ?? 1) * f) === sizes[i])) {
          // Constant scales (exact here): onnxruntime keeps such a resize in its blocked NCHWc layout, where sizes
          // computed at run time would make it reorder the tensor out and back in.
          rewrites.set(node, (out) => [{ ...node, inputs: [x, ins[1] ?? '', out.constant(`${node.name}_scales`, [factors.length], Float32Array.from(factors))] }]);
          return null;
        }
        // sizes = [the input's batch, the rest as converted]: exact where scales would round.
        rewrites.set(node, (out) => {
          const [shapeOf, batch, newSizes] = [out.fresh('resize_input_shape'), out.fresh('resize_batch'), out.fresh('resize_sizes')];
          const start = out.constant('batch_start', [1], BigInt64Array.of(0n), DataType.INT64);
          const end = out.constant('batch_end', [1], BigInt64Array.of(1n), DataType.INT64);
          const rest = out.constant(`${node.name}_sizes_rest`, [sizes.length - 1], BigInt64Array.from(sizes.slice(1).map(BigInt)), DataType.INT64);
          return [
            { op: 'Shape', inputs: [x], outputs: [shapeOf], name: out.fresh('resize_input_shape_node') },
            { op: 'Slice', inputs: [shapeOf, start, end], outputs: [batch], name: out.fresh('resize_batch_node') },
            { op: 'Concat', inputs: [batch, rest], outputs: [newSizes], name: out.fresh('resize_sizes_node'), attrs: { axis: 0 } },
            { ...node, inputs: [x, ins[1] ?? '', ins[2] ?? '', newSizes] },
          ];
        });
        return null;
      }
      if (scales !== undefined && scales.data instanceof Float32Array && scales.data[0] === 1) return null;
      return 'its scales are not known';
    }
  }
  if (REDUCE.has(node.op)) {
    const axes = ints('axes') ?? (ins[1] ? intsOf(ins[1]) : undefined);
    if (axes === undefined || axes.length === 0) return 'it reduces every axis, the batch included';
    return axes.some((a) => norm(a, rank(x)) === 0) ? 'it reduces the batch axis' : null;
  }
  return `${node.op} is not known to work per image`;
}

/**
 * The per-image part as one Scan node: its scan inputs are the batched values the part reads (each iteration sees
 * one image's slice and puts the leading 1 back with Unsqueeze, under a fresh name), its body is the part's nodes
 * unchanged, and its scan outputs are the graph outputs the part writes (their leading 1 squeezed away, stacked back
 * into the batch by Scan). Constants and initializers are read from the outer graph.
 */
function perImageScan(
  g: OnnxGraph,
  out: OnnxGraph,
  perImage: ReadonlySet<OnnxNode>,
  perImageOutputs: ReadonlySet<string>,
  batched: ReadonlySet<string>,
  probe: ReadonlyMap<string, ProbedTensor>,
): OnnxNode[] {
  const info = (name: string, dims: number[]): ValueInfo => ({ name, dims, dataType: probe.get(name)?.dataType ?? DataType.FLOAT });
  const nodes = g.nodes.filter((n) => perImage.has(n));
  // Batched values made before the per-image part (or the input) that it reads.
  const feeds = [...new Set(nodes.flatMap((n) => n.inputs).filter((t) => t !== '' && batched.has(t) && !perImageOutputs.has(t)))];
  const results = g.outputs.map((o) => o.name).filter((t) => perImageOutputs.has(t));
  const rename = new Map<string, string>();
  for (const t of [...feeds, ...results]) rename.set(t, out.fresh(`${sanitize(t)}__image`));
  const body = new OnnxGraph(`${g.name}_per_image`);
  body.adoptCounter(out);
  const axis0 = body.constant('axis0', [1], BigInt64Array.of(0n), DataType.INT64);
  for (const t of feeds) {
    const slice = body.fresh(`${sanitize(t)}__slice`);
    const dims = probe.get(t)!.dims;
    body.inputs.push({ ...info(t, dims.slice(1)), name: slice });
    body.nodes.push({ op: 'Unsqueeze', inputs: [slice, axis0], outputs: [rename.get(t)!], name: body.fresh('unsqueeze_image') });
  }
  const ref = (t: string) => rename.get(t) ?? t;
  for (const n of nodes) body.nodes.push({ ...n, inputs: n.inputs.map(ref), outputs: n.outputs.map(ref) });
  for (const t of results) {
    const squeezed = body.fresh(`${sanitize(t)}__stacked`);
    body.nodes.push({ op: 'Squeeze', inputs: [rename.get(t)!, axis0], outputs: [squeezed], name: body.fresh('squeeze_image') });
    body.outputs.push({ ...info(t, probe.get(t)!.dims.slice(1)), name: squeezed });
  }
  out.adoptCounter(body);
  const attrs: Record<string, AttrValue> = { body: { graph: body.toGraphProto() }, num_scan_inputs: feeds.length };
  return [{ op: 'Scan', inputs: feeds, outputs: results, name: out.fresh('per_image_scan'), attrs }];
}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9_]/g, '_').slice(-60);
}

function unsupported(why: string): VisionpipeError {
  return new VisionpipeError('VP_MODEL_UNSUPPORTED', `The model cannot take a batch: ${why}`, {
    hint: 'It keeps batch 1: frames of several sources run one after another (pipeline.maxBatch has no effect).',
  });
}
