import { writeFileSync } from 'node:fs';
import { cv } from '../../cv.js';
import type { TimedVariant } from './evaluate-variant.js';
import { forwardNet } from '../../inference/opencv-host.js';
import type { OnnxGraph } from '../onnx/onnx-graph.js';
import { cloneGraph } from './quantize-qdq.js';

/**
 * The same fp32 graph for OpenCV DNN, which takes NCHW blobs: the importer's leading NHWC→NCHW Transpose is
 * dropped and the input declared [N, C, H, W]. Gemm weights are stored [out, in] with transB = 1, the only
 * layout OpenCV 4.6's ONNX importer reads with a bias, and Clip takes its bounds as attributes (OpenCV 4.6 reads
 * Clip the opset-6 way only).
 */
export function withNchwInput(graph: OnnxGraph): OnnxGraph {
  const g = cloneGraph(graph);
  for (const node of g.nodes) {
    if (node.op !== 'Clip' || node.inputs.length < 2) continue;
    const [lo, hi] = [node.inputs[1], node.inputs[2]].map((t) => (t === undefined || t === '' ? undefined : g.initializers.get(t)?.data[0]));
    if ((node.inputs[1] && lo === undefined) || (node.inputs[2] && hi === undefined)) continue; // computed bounds: leave it
    node.inputs = [node.inputs[0]!];
    node.attrs = { ...node.attrs, min: { f: Number(lo ?? -3.4e38) }, max: { f: Number(hi ?? 3.4e38) } };
  }
  g.pruneInitializers();
  for (const node of g.nodes) {
    const b = node.op === 'Gemm' && node.attrs?.['transB'] === undefined ? g.initializers.get(node.inputs[1] ?? '') : undefined;
    if (b === undefined || !(b.data instanceof Float32Array) || b.dims.length !== 2) continue;
    const [rows = 0, cols = 0] = b.dims;
    const t = new Float32Array(b.data.length);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = b.data[r * cols + c]!;
    b.data = t;
    b.dims = [cols, rows];
    node.attrs = { ...node.attrs, transB: 1 };
  }
  const input = g.inputs[0]!;
  const t = g.nodes.find((n) => n.op === 'Transpose' && n.inputs[0] === input.name && JSON.stringify(n.attrs?.['perm']) === '[0,3,1,2]');
  if (t === undefined) return g;
  g.nodes = g.nodes.filter((n) => n !== t);
  for (const n of g.nodes) n.inputs = n.inputs.map((i) => (i === t.outputs[0] ? input.name : i));
  const [n, h, w, c] = input.dims;
  input.dims = [n ?? null, c ?? null, h ?? null, w ?? null];
  return g;
}

/** Runs NHWC float frames through OpenCV DNN (readNetFromONNX, CPU), one at a time, with forwardAsync. */
export async function runFramesOpenCv(model: Uint8Array, file: string, frames: Float32Array[], hw: [number, number]): Promise<{ outputs: Float32Array[]; ms: number[] }> {
  writeFileSync(file, model);
  const net = cv.readNetFromONNX(file);
  const outputs: Float32Array[] = [];
  const ms: number[] = [];
  for (const [i, x] of frames.entries()) {
    const start = performance.now();
    outputs.push((await forwardNet(net, x, 'nhwc', hw)).data);
    if (i > 0 || frames.length === 1) ms.push(performance.now() - start);
  }
  return { outputs, ms };
}

/** An OpenCV DNN model file as a TimedVariant (NHWC float frames). */
export function openCvVariant(name: string, file: string, hw: [number, number]): TimedVariant {
  return {
    name,
    open: () => {
      const net = cv.readNetFromONNX(file);
      return Promise.resolve({ run: (x: Float32Array) => forwardNet(net, x, 'nhwc', hw), close: () => Promise.resolve() });
    },
  };
}
