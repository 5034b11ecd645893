import { cv, type Mat } from '../cv.js';
import type { PointXy } from '../tracking/geometry-schema.js';
import type { TrackedFrame } from '../tracking/source-tracking.js';
import { classColor } from './result-annotator.js';

const FONT = cv.FONT_HERSHEY_SIMPLEX;
const WHITE = () => new cv.Vec3(255, 255, 255);
/** How strongly a zone's fill tints the frame under it (0 = outline only). */
const ZONE_TINT = 0.22;
const ZONE_COLOR: [number, number, number] = [0, 200, 255];
const LINE_COLOR: [number, number, number] = [255, 0, 255];

/**
 * Draws what tracking adds to a frame, in place: zones (tinted, with their occupancy), lines (with an arrow to the
 * `in` side and their in / out counts), each object's trail, and its box with `#id label score`. Lost objects (not
 * seen in this frame) are not drawn: their box is a prediction.
 */
export function drawTracking(scene: Mat, tracked: TrackedFrame, thicknessPx: number): void {
  for (const { zone, occupancy } of tracked.zones) drawZone(scene, zone.name, zone.polygon, occupancy, thicknessPx);
  for (const { line, counts } of tracked.lines) drawLine(scene, line.name, line.from, line.to, counts, thicknessPx);
  for (const track of tracked.tracks) {
    if (track.state !== 'confirmed') continue;
    const color = new cv.Vec3(...trackColor(track.id));
    const trail = tracked.trails.get(track.id) ?? [];
    if (trail.length > 1) scene.drawPolylines([trail.map(point)], false, color, Math.max(1, thicknessPx - 1), cv.LINE_AA);
    const [x1, y1, x2, y2] = track.xyxy.map(Math.round) as [number, number, number, number];
    scene.drawRectangle(new cv.Point2(x1, y1), new cv.Point2(x2, y2), color, thicknessPx, cv.LINE_8);
    drawTag(scene, `#${track.id} ${track.label ?? track.classId} ${track.score.toFixed(2)}`, x1, y1, color);
  }
}

/** A distinct colour per track id (the class palette, walked in a stride so neighbours differ). */
export function trackColor(trackId: number): [number, number, number] {
  return classColor(trackId * 7);
}

function drawZone(scene: Mat, name: string, polygon: readonly PointXy[], occupancy: number, thicknessPx: number): void {
  const pts = polygon.map(point);
  const color = new cv.Vec3(...ZONE_COLOR);
  // Tint only the polygon's bounding box, not the whole frame: the blend costs its area.
  const xs = polygon.map((p) => p[0]);
  const ys = polygon.map((p) => p[1]);
  const left = clamp(Math.floor(Math.min(...xs)), 0, scene.cols - 1);
  const top = clamp(Math.floor(Math.min(...ys)), 0, scene.rows - 1);
  const right = clamp(Math.ceil(Math.max(...xs)), left + 1, scene.cols);
  const bottom = clamp(Math.ceil(Math.max(...ys)), top + 1, scene.rows);
  const roi = scene.getRegion(new cv.Rect(left, top, right - left, bottom - top));
  const filled = roi.copy();
  filled.drawFillPoly([pts.map((p) => new cv.Point2(p.x - left, p.y - top))], color);
  const blended = filled.addWeighted(ZONE_TINT, roi, 1 - ZONE_TINT, 0);
  blended.copyTo(roi);
  filled.release();
  blended.release();
  scene.drawPolylines([pts], true, color, thicknessPx, cv.LINE_AA);
  const first = pts[0];
  if (first !== undefined) drawTag(scene, `${name}: ${occupancy}`, first.x, first.y, color);
}

function drawLine(
  scene: Mat,
  name: string,
  from: PointXy,
  to: PointXy,
  counts: { in: number; out: number },
  thicknessPx: number,
): void {
  const color = new cv.Vec3(...LINE_COLOR);
  scene.drawLine(point(from), point(to), color, thicknessPx + 1, cv.LINE_AA);
  // The arrow points to the `in` side: the right-hand normal of from → to on screen (y grows downwards).
  const dx = to[0] - from[0];
  const dy = to[1] - from[1];
  const length = Math.hypot(dx, dy);
  const mid: PointXy = [(from[0] + to[0]) / 2, (from[1] + to[1]) / 2];
  const arrowPx = 24;
  const tip: PointXy = [mid[0] - (dy / length) * arrowPx, mid[1] + (dx / length) * arrowPx];
  scene.drawArrowedLine(point(mid), point(tip), color, thicknessPx, cv.LINE_AA, 0, 0.35);
  // On the `out` side of the line's start, away from the arrow, so the label covers neither.
  drawTag(scene, `${name}  in ${counts.in}  out ${counts.out}`, from[0] + (dy / length) * 10, from[1] - (dx / length) * 10, color);
}

/** A filled label above (x, y), kept inside the frame. */
export function drawTag(scene: Mat, text: string, x: number, y: number, color: InstanceType<typeof cv.Vec3>): void {
  const { size } = cv.getTextSize(text, FONT, 0.45, 1);
  const left = clamp(Math.round(x), 0, Math.max(0, scene.cols - size.width - 4));
  const top = clamp(Math.round(y) - size.height - 6, 0, Math.max(0, scene.rows - size.height - 6));
  scene.drawRectangle(new cv.Point2(left, top), new cv.Point2(left + size.width + 4, top + size.height + 6), color, cv.FILLED);
  scene.putText(text, new cv.Point2(left + 2, top + size.height + 2), FONT, 0.45, WHITE(), 1, cv.LINE_AA);
}

function point(p: PointXy): InstanceType<typeof cv.Point2> {
  return new cv.Point2(Math.round(p[0]), Math.round(p[1]));
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), hi);
}
