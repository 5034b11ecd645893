import { VisionpipeError } from '../../errors.js';
import { normalisation, type PreprocessSpec } from '../../preprocess/preprocess-frame.js';
import { DataType, OnnxGraph } from './onnx-graph.js';

/** The input a graph with a pixel prologue takes: the resized frame's own bytes, NHWC uint8 (in the model's channel order). */
export const PIXELS_INPUT = 'pixels';

/**
 * Moves the per-pixel float work of preprocessing into the model: the returned graph takes `pixels`, uint8
 * [N, H, W, 3] (the resized frame's bytes in the model's channel order, copied once into the ring slot), and computes
 * what OpenCV did in float before — value = (pixel · scale − mean[c]) / std[c], and NHWC → NCHW for NCHW models — as
 * its first nodes (Cast, Mul, Add, Transpose), feeding the original input; the worker receives a quarter of the
 * bytes. The channel order stays in OpenCV (cvtColor on libuv's pool, beside inference): as a Gather in the graph it
 * cost the inference thread, the pipeline's bottleneck, 2.5–5 ms per 512² frame, while the Cast costs nothing
 * measurable. `spec.pixelFormat: 'rgb'` with `pixelsAreBgr` reorders in the graph anyway (for tests and callers that
 * hand over BGR bytes).
 */
export function withPixelPrologue(
  g: OnnxGraph,
  inputName: string | undefined,
  spec: Pick<PreprocessSpec, 'layout' | 'pixelFormat' | 'scale' | 'mean' | 'std'>,
  pixelsAreBgr = false,
): OnnxGraph {
  const input = inputName === undefined ? g.inputs[0] : g.inputs.find((i) => i.name === inputName);
  if (input === undefined) throw new VisionpipeError('VP_MODEL_SHAPE_MISMATCH', `The model has no input "${inputName}"`, { value: g.inputs.map((i) => i.name) });
  if ((input.dataType ?? DataType.FLOAT) !== DataType.FLOAT || input.dims.length !== 4) {
    throw new VisionpipeError('VP_MODEL_UNSUPPORTED', `A pixel prologue needs a 4-D float input; "${input.name}" is not`, { value: input.dims });
  }
  const [n, a, b, c] = input.dims;
  const [h, w] = spec.layout === 'nhwc' ? [a, b] : [b, c];
  const channels = spec.layout === 'nhwc' ? c : a;
  if (channels != null && channels !== 3) {
    // Left to the float path, whose input check names the model's real shape.
    throw new VisionpipeError('VP_MODEL_SHAPE_MISMATCH', `A pixel prologue feeds 3 channels; "${input.name}" (${spec.layout}) has ${channels}`, { value: input.dims });
  }
  const out = new OnnxGraph(g.name);
  out.adoptCounter(g);
  out.opset = g.opset;
  out.initializers = new Map(g.initializers);
  out.outputs = g.outputs;
  out.inputs = [{ name: PIXELS_INPUT, dims: [n ?? null, h ?? null, w ?? null, 3], dataType: DataType.UINT8 }, ...g.inputs.filter((i) => i !== input)];
  let t = out.add('Cast', [PIXELS_INPUT], { to: DataType.FLOAT }, 'pixels_f');
  if (pixelsAreBgr && spec.pixelFormat === 'rgb') {
    const order = out.constant('bgr_to_rgb', [3], BigInt64Array.of(2n, 1n, 0n), DataType.INT64);
    t = out.add('Gather', [t, order], { axis: 3 }, 'rgb');
  }
  const { alpha, beta } = normalisation(spec);
  if (alpha.some((v) => v !== 1)) t = out.add('Mul', [t, out.constant('pixel_scale', [3], Float32Array.from(alpha))], undefined, 'scaled');
  if (beta.some((v) => v !== 0)) t = out.add('Add', [t, out.constant('pixel_shift', [3], Float32Array.from(beta))], undefined, 'normalised');
  if (spec.layout === 'nchw') t = out.add('Transpose', [t], { perm: [0, 3, 1, 2] }, 'nchw');
  // The prologue's nodes (added to `out.nodes` above) run first; the original input becomes their result.
  out.nodes = [...out.nodes, { op: 'Identity', inputs: [t], outputs: [input.name], name: out.fresh('prologue_out') }, ...g.nodes];
  return out;
}
