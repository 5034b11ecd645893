import { boxToFrame, type InputTransform } from '../preprocess/letterbox-geometry.js';
import type { Detection } from './results.js';

export interface DetectOptions {
  minScore: number;
  iouThreshold: number;
  maxDetections: number;
}

type Xyxy = [number, number, number, number];

/** Intersection over union of two xyxy boxes. */
export function iou(a: readonly number[], b: readonly number[]): number {
  const [ax1 = 0, ay1 = 0, ax2 = 0, ay2 = 0] = a;
  const [bx1 = 0, by1 = 0, bx2 = 0, by2 = 0] = b;
  const iw = Math.max(0, Math.min(ax2, bx2) - Math.max(ax1, bx1));
  const ih = Math.max(0, Math.min(ay2, by2) - Math.max(ay1, by1));
  const inter = iw * ih;
  const union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter;
  return union <= 0 ? 0 : inter / union;
}

/** Greedy non-maximum suppression per class; input need not be sorted. */
export function nms<T extends { score: number; classId: number; xyxy: readonly number[] }>(
  boxes: readonly T[],
  iouThreshold: number,
  maxKeep: number,
): T[] {
  const sorted = [...boxes].sort((a, b) => b.score - a.score);
  const kept: T[] = [];
  for (const box of sorted) {
    if (kept.length >= maxKeep) break;
    if (kept.some((k) => k.classId === box.classId && iou(k.xyxy, box.xyxy) > iouThreshold)) continue;
    kept.push(box);
  }
  return kept;
}

/**
 * Decodes a [1, N, 6] tensor of rows (x1, y1, x2, y2, score, class) in model-input pixels: score filter,
 * per-class NMS, then boxes mapped back to frame pixels.
 */
export function decodeXyxyScoreClass(
  data: Float32Array,
  transform: InputTransform,
  frameWh: readonly [number, number],
  labels: readonly string[],
  options: DetectOptions,
): Detection[] {
  const candidates: Detection[] = [];
  for (let row = 0; row + 6 <= data.length; row += 6) {
    const score = data[row + 4] ?? 0;
    if (!(score >= options.minScore)) continue;
    const classId = Math.round(data[row + 5] ?? 0);
    const xyxy = boxToFrame(
      [data[row] ?? 0, data[row + 1] ?? 0, data[row + 2] ?? 0, data[row + 3] ?? 0] as Xyxy,
      transform,
      frameWh,
    );
    if (xyxy[2] <= xyxy[0] || xyxy[3] <= xyxy[1]) continue;
    candidates.push({ classId, label: labels[classId] ?? `class ${classId}`, score, xyxy });
  }
  return nms(candidates, options.iouThreshold, options.maxDetections);
}
