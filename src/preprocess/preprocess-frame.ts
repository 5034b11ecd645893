import { cv, type Mat } from '../cv.js';
import type { ModelDescriptor } from '../models/descriptor-schema.js';
import { planResize, type InputTransform } from './letterbox-geometry.js';

/** Everything preprocessing needs, derived once from a model descriptor. */
export interface PreprocessSpec {
  inputWh: readonly [number, number];
  layout: 'nhwc' | 'nchw';
  dtype: 'float32' | 'uint8';
  resize: 'stretch' | 'letterbox' | 'center-crop';
  /** auto: area averaging when shrinking by 2x or more (no aliasing), bilinear otherwise. */
  interpolation: 'auto' | 'linear' | 'area' | 'nearest' | 'cubic';
  pixelFormat: 'rgb' | 'bgr';
  scale: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  padValue: number;
}

export function preprocessSpecOf(d: ModelDescriptor): PreprocessSpec {
  return { inputWh: d.input.sizeWh, layout: d.input.layout, dtype: d.input.dtype, ...d.preprocess };
}

/** Tensor dims for one frame: [1, H, W, 3] or [1, 3, H, W]. */
export function inputDims(spec: PreprocessSpec): number[] {
  const [w, h] = spec.inputWh;
  return spec.layout === 'nhwc' ? [1, h, w, 3] : [1, 3, h, w];
}

export function inputByteLength(spec: PreprocessSpec): number {
  const [w, h] = spec.inputWh;
  return w * h * 3 * (spec.dtype === 'float32' ? 4 : 1);
}

export interface PreprocessResult {
  transform: InputTransform;
  /** Bytes copied in JS-visible memory for this frame (out of OpenCV, then into the slot). */
  bytesCopied: number;
}

/**
 * Resizes (stretch / letterbox / centre-crop), converts colour, normalises and lays out one BGR frame into
 * `target` (a ring slot's memory) with OpenCV's async functions, so the event loop stays free.
 * value = (pixel * scale - mean[c]) / std[c].
 */
export async function preprocessInto(frame: Mat, spec: PreprocessSpec, target: ArrayBuffer): Promise<PreprocessResult> {
  // Every intermediate Mat is ours: released at the end rather than left to the garbage collector.
  const owned: Mat[] = [];
  const own = <T extends Mat | Mat[]>(made: T): T => (owned.push(...(Array.isArray(made) ? made : [made])), made);
  try {
    return await fill(frame, spec, target, own);
  } finally {
    for (const mat of owned) mat.release();
  }
}

async function fill(frame: Mat, spec: PreprocessSpec, target: ArrayBuffer, own: <T extends Mat | Mat[]>(made: T) => T): Promise<PreprocessResult> {
  const plan = planResize(spec.resize, [frame.cols, frame.rows], spec.inputWh);
  const [rw, rh] = plan.resizedWh;
  let m = own(await frame.resizeAsync(rh, rw, 0, 0, interpolationFlag(spec.interpolation, [frame.cols, frame.rows], [rw, rh])));
  const [top, bottom, left, right] = plan.padTblr;
  if (top + bottom + left + right > 0) {
    const p = spec.padValue;
    m = own(await m.copyMakeBorderAsync(top, bottom, left, right, cv.BORDER_CONSTANT, new cv.Vec3(p, p, p)));
  }
  if (plan.cropXywh !== null) {
    const [x, y, w, h] = plan.cropXywh;
    m = own(own(m.getRegion(new cv.Rect(x, y, w, h))).copy());
  }
  if (spec.pixelFormat === 'rgb') m = own(await m.cvtColorAsync(cv.COLOR_BGR2RGB));

  const [iw, ih] = spec.inputWh;
  const planeBytes = iw * ih * (spec.dtype === 'float32' ? 4 : 1);
  let copied = 0;
  // One copy, straight into the slot: OpenCV copies into a Mat header over the slot's memory (no JS Buffer between).
  // The header lives only for this copy; the slot is transferred to the worker after preprocessing returns.
  const put = async (mat: Mat, byteOffset: number) => {
    const bytes = mat.rows * mat.cols * mat.elemSize;
    const header = new cv.Mat(mat.rows, mat.cols, mat.type, Buffer.from(target, byteOffset, bytes));
    try {
      await mat.copyToAsync(header);
    } finally {
      header.release();
    }
    copied += bytes;
  };

  if (spec.dtype === 'uint8') {
    if (spec.layout === 'nhwc') await put(m, 0);
    else await settleAll(own(await m.splitChannelsAsync()).map((plane, c) => put(plane, c * planeBytes)));
    return { transform: plan, bytesCopied: copied };
  }

  const { alpha, beta } = normalisation(spec);
  const uniform = alpha.every((a) => a === alpha[0]) && beta.every((b) => b === beta[0]);
  if (spec.layout === 'nhwc' && uniform) {
    await put(own(await m.convertToAsync(cv.CV_32FC3, alpha[0], beta[0])), 0);
  } else {
    const planes = own(await m.splitChannelsAsync());
    const floats = own(await Promise.all(planes.map((p, c) => p.convertToAsync(cv.CV_32FC1, alpha[c], beta[c]))));
    if (spec.layout === 'nchw') await settleAll(floats.map((plane, c) => put(plane, c * planeBytes)));
    else await put(own(new cv.Mat(floats)), 0);
  }
  return { transform: plan, bytesCopied: copied };
}

/** value = pixel · alpha[c] + beta[c], the spec's (pixel · scale − mean[c]) / std[c] per channel. */
export function normalisation(spec: Pick<PreprocessSpec, 'scale' | 'mean' | 'std'>): { alpha: number[]; beta: number[] } {
  return {
    alpha: [0, 1, 2].map((c) => spec.scale / (spec.std[c] ?? 1)),
    beta: [0, 1, 2].map((c) => -(spec.mean[c] ?? 0) / (spec.std[c] ?? 1)),
  };
}

/**
 * Waits for every copy into the slot before failing: a copy still running when the slot is handed on (transferred to
 * the worker, or reused) would write into memory that is no longer the slot's.
 */
async function settleAll(copies: Array<Promise<void>>): Promise<void> {
  const results = await Promise.allSettled(copies);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/**
 * The OpenCV resize flag. Bilinear sampling reads only the 2×2 pixels nearest each output pixel, so shrinking a
 * 768×576 frame to 32×32 point-samples it (aliasing: a noisy thumbnail that small models answer erratically);
 * area averaging uses every pixel, as the thumbnails such models were trained on were made.
 */
export function interpolationFlag(mode: PreprocessSpec['interpolation'], fromWh: readonly [number, number], toWh: readonly [number, number]): number {
  if (mode === 'auto') return fromWh[0] >= 2 * toWh[0] && fromWh[1] >= 2 * toWh[1] ? cv.INTER_AREA : cv.INTER_LINEAR;
  return { linear: cv.INTER_LINEAR, area: cv.INTER_AREA, nearest: cv.INTER_NEAREST, cubic: cv.INTER_CUBIC }[mode];
}
