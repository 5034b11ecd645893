import type { Xyxy } from '../types.js';

/**
 * One object of a synthetic scene, moving at constant velocity. Positions are of its bottom-centre (where feet
 * touch the ground), in frame pixels, so "in front" is simply "lower in the frame".
 */
export interface SceneObject {
  /** Ground-truth trajectory id, unique in the scene. */
  id: number;
  classId: number;
  /** Box width and height, px. */
  sizeWh: [number, number];
  /** Bottom-centre, px, at `atMs`: a scene states where paths cross by giving the same point and time. */
  bottomCenterPx: [number, number];
  atMs: number;
  velocityPxPerS: [number, number];
  /** The object exists from `startMs` to `endMs` (inclusive); the frame edges can hide it earlier or later. */
  startMs: number;
  endMs: number;
}

/** The object's full box at `timeMs` (may extend past the frame). */
export function boxAt(object: SceneObject, timeMs: number): Xyxy {
  const dtS = (timeMs - object.atMs) / 1000;
  const cx = object.bottomCenterPx[0] + object.velocityPxPerS[0] * dtS;
  const bottom = object.bottomCenterPx[1] + object.velocityPxPerS[1] * dtS;
  const [w, h] = object.sizeWh;
  return [cx - w / 2, bottom - h, cx + w / 2, bottom];
}

/**
 * A pedestrian-like size for a bottom edge at `bottomPx`: farther away (higher in the frame) is smaller, as through
 * a camera looking down at a street. Height 60 px at the top of a 720 px frame to 200 px at the bottom; width 0.4 h.
 */
export function personSizeWh(bottomPx: number, frameHeightPx: number): [number, number] {
  const h = 60 + 140 * Math.min(1, Math.max(0, bottomPx / frameHeightPx));
  return [0.4 * h, h];
}
