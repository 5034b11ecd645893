import type { Xyxy } from './types.js';

/**
 * Intersection over union of two `xyxy` boxes (frame pixels), in [0, 1]. A degenerate box (zero or negative width
 * or height, or a non-finite coordinate) overlaps nothing, so the result is 0 rather than NaN.
 */
export function iou(a: Readonly<Xyxy>, b: Readonly<Xyxy>): number {
  const areaA = area(a);
  const areaB = area(b);
  if (areaA === 0 || areaB === 0) return 0;
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (!(w > 0 && h > 0)) return 0;
  const inter = w * h;
  return inter / (areaA + areaB - inter);
}

function area(box: Readonly<Xyxy>): number {
  const w = box[2] - box[0];
  const h = box[3] - box[1];
  // `!(x > 0)` also catches NaN; an infinite box has no meaningful overlap ratio.
  if (!(w > 0 && h > 0) || !Number.isFinite(w * h)) return 0;
  return w * h;
}
