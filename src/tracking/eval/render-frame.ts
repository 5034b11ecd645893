import type { TrackInput, Xyxy } from '../types.js';
import { areaOf, clipToFrame, coveredArea } from './box-geometry.js';
import type { EvalBox } from './eval-frame.js';
import { boxAt, personSizeWh, type SceneObject } from './scene-object.js';
import type { Rng } from './seeded-random.js';

/** How the simulated detector errs. */
export interface DetectionNoise {
  /** Standard deviation of each box edge, as a fraction of the box's width (x edges) or height (y edges). Default 0.04. */
  jitterFrac: number;
  /** Chance that a fully visible object is not detected in a frame. Default 0.1 (the 10 %). */
  missRate: number;
  /** Score of a visible object's detection: mean and standard deviation (clamped to [0.05, 0.99]). Default 0.8 ± 0.1. */
  scoreMean: number;
  scoreSigma: number;
  /** Mean number of false positives per frame (Poisson), anywhere in the frame, person-sized. Default 1. */
  falsePositivesPerFrame: number;
  /** Score range of a false positive. Default [0.2, 0.7]: most are low, a few can start a track. */
  falsePositiveScore: [number, number];
  /**
   * Score range of a partly occluded object's detection, which also jitters twice as much; null: partly occluded
   * objects are not detected. Default [0.15, 0.45] (ByteTrack's second-stage detections).
   */
  occludedScore: [number, number] | null;
  /** Visible fraction below which an object is not detected at all. Default 0.35. */
  hiddenBelow: number;
  /** Visible fraction below which an object counts as partly occluded. Default 0.75. */
  partlyOccludedBelow: number;
}

export const DEFAULT_NOISE: Readonly<DetectionNoise> = Object.freeze<DetectionNoise>({
  jitterFrac: 0.04,
  missRate: 0.1,
  scoreMean: 0.8,
  scoreSigma: 0.1,
  falsePositivesPerFrame: 1,
  falsePositiveScore: [0.2, 0.7],
  occludedScore: [0.15, 0.45],
  hiddenBelow: 0.35,
  partlyOccludedBelow: 0.75,
});

/** One frame of a synthetic scene: its time, the truth and what a detector would have output. */
export interface SceneFrame {
  timeMs: number;
  gt: EvalBox[];
  detections: TrackInput[];
}

/**
 * An object is in the truth while at least this fraction of its box is inside the frame: a sliver at the edge is
 * neither labelled in MOT datasets nor found by detectors.
 */
const MIN_IN_FRAME_FRAC = 0.3;

/**
 * Renders the truth and noisy detections at `timeMs`. GT boxes are amodal (the whole object, even behind another,
 * as MOTChallenge labels them), clipped to the frame; detections depend on how much of the object is visible,
 * with objects lower in the frame (nearer the camera) hiding those behind them. Detections come out shuffled so a
 * tracker cannot lean on their order.
 */
export function renderFrame(objects: readonly SceneObject[], timeMs: number, frameWh: [number, number], noise: DetectionNoise, rng: Rng): SceneFrame {
  const present = objects
    .filter((o) => o.startMs <= timeMs && timeMs <= o.endMs)
    .map((o) => {
      const full = boxAt(o, timeMs);
      return { object: o, full, box: clipToFrame(full, frameWh) };
    })
    .filter((p) => areaOf(p.box) >= MIN_IN_FRAME_FRAC * areaOf(p.full));
  const gt = present.map((p) => ({ id: p.object.id, xyxy: p.box }));
  const detections: TrackInput[] = [];
  for (const p of present) {
    const occluders = present.filter((q) => q.full[3] > p.full[3]).map((q) => q.box);
    const visibleFrac = 1 - coveredArea(p.box, occluders) / areaOf(p.box);
    const detection = detect(p.box, p.object.classId, visibleFrac, frameWh, noise, rng);
    if (detection !== undefined) detections.push(detection);
  }
  for (let n = rng.poisson(noise.falsePositivesPerFrame); n > 0; n--) detections.push(falsePositive(frameWh, noise, rng));
  return { timeMs, gt, detections: shuffle(detections, rng) };
}

function detect(box: Xyxy, classId: number, visibleFrac: number, frameWh: [number, number], noise: DetectionNoise, rng: Rng): TrackInput | undefined {
  if (visibleFrac < noise.hiddenBelow) return undefined;
  const partly = visibleFrac < noise.partlyOccludedBelow;
  if (partly && noise.occludedScore === null) return undefined;
  if (!partly && rng.chance(noise.missRate)) return undefined;
  const score = partly && noise.occludedScore !== null ? rng.uniform(...noise.occludedScore) : clamp(rng.normal(noise.scoreMean, noise.scoreSigma), 0.05, 0.99);
  const xyxy = clipToFrame(jitter(box, noise.jitterFrac * (partly ? 2 : 1), rng), frameWh);
  return { xyxy, score, classId };
}

function jitter(b: Xyxy, frac: number, rng: Rng): Xyxy {
  const [sx, sy] = [frac * (b[2] - b[0]), frac * (b[3] - b[1])];
  const x1 = rng.normal(b[0], sx);
  const y1 = rng.normal(b[1], sy);
  // Keep the box at least 2 px each way however large the noise.
  return [x1, y1, Math.max(x1 + 2, rng.normal(b[2], sx)), Math.max(y1 + 2, rng.normal(b[3], sy))];
}

function falsePositive(frameWh: [number, number], noise: DetectionNoise, rng: Rng): TrackInput {
  const bottom = rng.uniform(0.2 * frameWh[1], frameWh[1]);
  const [w, h] = personSizeWh(bottom, frameWh[1]);
  const cx = rng.uniform(w / 2, frameWh[0] - w / 2);
  return { xyxy: [cx - w / 2, bottom - h, cx + w / 2, bottom], score: rng.uniform(...noise.falsePositiveScore), classId: 0 };
}

function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
