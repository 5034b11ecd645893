import { cv, type Mat } from '../cv.js';
import type { FrameResult } from '../postprocess/results.js';
import type { TrackedFrame } from '../tracking/source-tracking.js';
import type { Annotator, OverlayStats } from './annotator.js';
import { drawTracking } from './track-drawing.js';

/** A fixed, distinct BGR colour per class id. */
export function classColor(classId: number): [number, number, number] {
  const palette: Array<[number, number, number]> = [
    [56, 56, 255], [151, 157, 255], [31, 112, 255], [29, 178, 255], [49, 210, 207], [10, 249, 72],
    [23, 204, 146], [134, 219, 61], [52, 147, 26], [187, 212, 0], [168, 153, 44], [255, 194, 0],
    [147, 69, 52], [255, 115, 100], [236, 24, 0], [255, 56, 132], [133, 0, 82], [255, 56, 203],
  ];
  return palette[((classId % palette.length) + palette.length) % palette.length] ?? [255, 255, 255];
}

/** Boxes with "label score" tags for detections, a top-k list for classifications, and an fps/latency overlay. */
export class ResultAnnotator implements Annotator {
  constructor(private readonly style: { thicknessPx: number; overlay: boolean }) {}

  annotate(scene: Mat, result: FrameResult, stats: OverlayStats, tracked: TrackedFrame | null = null): void {
    const font = cv.FONT_HERSHEY_SIMPLEX;
    const t = this.style.thicknessPx;
    if (tracked !== null) {
      drawTracking(scene, tracked, t);
    } else if (result.task === 'detection') {
      for (const det of result.detections) {
        const [x1, y1, x2, y2] = det.xyxy.map(Math.round) as [number, number, number, number];
        const color = new cv.Vec3(...classColor(det.classId));
        scene.drawRectangle(new cv.Point2(x1, y1), new cv.Point2(x2, y2), color, t, cv.LINE_8);
        const text = `${det.label} ${det.score.toFixed(2)}`;
        const { size } = cv.getTextSize(text, font, 0.45, 1);
        const top = Math.max(0, y1 - size.height - 6);
        scene.drawRectangle(new cv.Point2(x1, top), new cv.Point2(x1 + size.width + 4, top + size.height + 6), color, cv.FILLED);
        scene.putText(text, new cv.Point2(x1 + 2, top + size.height + 2), font, 0.45, new cv.Vec3(255, 255, 255), 1, cv.LINE_AA);
      }
    } else {
      result.classifications.forEach((c, i) => {
        const text = `${c.label} ${(c.score * 100).toFixed(1)}%`;
        const y = scene.rows - 12 - (result.classifications.length - 1 - i) * 24;
        scene.putText(text, new cv.Point2(10, y), font, 0.6, new cv.Vec3(0, 0, 0), 4, cv.LINE_AA);
        scene.putText(text, new cv.Point2(10, y), font, 0.6, new cv.Vec3(...classColor(c.classId)), 2, cv.LINE_AA);
      });
    }
    if (this.style.overlay) {
      const text = `${stats.fps.toFixed(1)} fps  latency ${stats.latencyMs.toFixed(0)} ms  infer ${stats.inferMs.toFixed(0)} ms`;
      scene.drawRectangle(new cv.Point2(0, 0), new cv.Point2(Math.min(scene.cols, 430), 26), new cv.Vec3(0, 0, 0), cv.FILLED);
      scene.putText(text, new cv.Point2(6, 18), font, 0.5, new cv.Vec3(255, 255, 255), 1, cv.LINE_AA);
    }
  }
}
