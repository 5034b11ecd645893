import type { Xyxy } from '../types.js';

/** Area in px²; 0 for an empty or inverted box. */
export function areaOf(b: Xyxy): number {
  return Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
}

/** `b` clipped to `[0, 0, widthPx, heightPx]`. */
export function clipToFrame(b: Xyxy, [widthPx, heightPx]: readonly [number, number]): Xyxy {
  return [Math.max(0, b[0]), Math.max(0, b[1]), Math.min(widthPx, b[2]), Math.min(heightPx, b[3])];
}

/**
 * The area of `target` covered by the union of `covers`, in px², exactly: coordinate compression along x, then
 * merged y-intervals per slab. Occluders overlap each other in crowds, so summing their overlaps would overcount.
 */
export function coveredArea(target: Xyxy, covers: readonly Xyxy[]): number {
  const clipped = covers
    .map((c): Xyxy => [Math.max(c[0], target[0]), Math.max(c[1], target[1]), Math.min(c[2], target[2]), Math.min(c[3], target[3])])
    .filter((c) => c[2] > c[0] && c[3] > c[1]);
  if (clipped.length === 0) return 0;
  const xs = [...new Set(clipped.flatMap((c) => [c[0], c[2]]))].sort((a, b) => a - b);
  let area = 0;
  for (let i = 0; i + 1 < xs.length; i++) {
    const [x0, x1] = [xs[i]!, xs[i + 1]!];
    const spans = clipped.filter((c) => c[0] <= x0 && c[2] >= x1).map((c) => [c[1], c[3]] as const).sort((a, b) => a[0] - b[0]);
    let covered = 0;
    let end = -Infinity;
    for (const [y0, y1] of spans) {
      if (y1 <= end) continue;
      covered += y1 - Math.max(y0, end);
      end = y1;
    }
    area += covered * (x1 - x0);
  }
  return area;
}
