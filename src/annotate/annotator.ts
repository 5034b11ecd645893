import type { Mat } from '../cv.js';
import type { FrameResult } from '../postprocess/results.js';
import type { TrackedFrame } from '../tracking/source-tracking.js';

/** Numbers shown in the overlay. */
export interface OverlayStats {
  /** End-to-end frames per second, smoothed. */
  fps: number;
  /** This frame's read → annotate latency. */
  latencyMs: number;
  inferMs: number;
}

/** Draws on a frame in place. Style is set in the constructor; one method does the work. */
export interface Annotator {
  /** With `tracked` (a tracked source), draws the tracks, zones and lines instead of the raw detections. */
  annotate(scene: Mat, result: FrameResult, stats: OverlayStats, tracked?: TrackedFrame | null): void;
}
