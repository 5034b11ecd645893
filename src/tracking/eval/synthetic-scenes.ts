import { DEFAULT_NOISE, renderFrame, type DetectionNoise, type SceneFrame } from './render-frame.js';
import { personSizeWh, type SceneObject } from './scene-object.js';
import { seededRng, type Rng } from './seeded-random.js';

export type SceneName = 'crossing' | 'occlusion' | 'dense' | 'dropped-frames';

/** A synthetic scene with known truth: per frame, its time, the GT boxes and the noisy detections. */
export interface Scene {
  name: SceneName;
  /** What the scene exercises, one line. */
  description: string;
  frameWh: [number, number];
  frames: SceneFrame[];
}

export interface SceneOptions {
  /** Seeds the layout (dense scenes) and the detector noise; same seed, same scene. Each scene has its own default. */
  seed: number;
  /** Overrides of DEFAULT_NOISE. */
  noise: Partial<DetectionNoise>;
}

const PERSON = 0;
const CAR = 2;
/** 25 fps, the usual camera rate. */
const FRAME_MS = 40;
const HD: [number, number] = [1280, 720];

/**
 * Pedestrians whose paths cross: two walking head-on at nearly the same depth, two crossing in an X, three
 * converging on one point, and a car crossing a pedestrian's path. 8 s at 25 fps, 1280×720.
 */
export function crossingScene(options: Partial<SceneOptions> = {}): Scene {
  const walk = (id: number, at: [x: number, y: number, ms: number], velocityPxPerS: [number, number]): SceneObject =>
    object(id, PERSON, personSizeWh(at[1], HD[1]), at, velocityPxPerS);
  const objects = [
    walk(1, [800, 520, 5000], [120, 0]),
    walk(2, [800, 530, 5000], [-130, 0]),
    walk(3, [420, 400, 2500], [100, 40]),
    walk(4, [420, 400, 2500], [-100, 60]),
    walk(5, [900, 260, 2000], [90, 0]),
    walk(6, [900, 262, 2000], [-80, 30]),
    walk(7, [900, 258, 2000], [10, 45]),
    object(8, CAR, [220, 110], [500, 640, 6500], [-250, 0]),
    walk(9, [500, 620, 6500], [0, 70]),
  ];
  return build('crossing', 'paths crossing: head-on, X, three-way, car across a pedestrian', objects, regularTimes(8000), HD, options, 9);
}

/**
 * Objects hidden for up to ~0.9 s: pedestrians walking behind a parked van (one hidden, then one only partly, for
 * 1.5 s of low-score detections), one walking behind another coming the other way, and one overtaken by a faster
 * one (hidden ~0.65 s). 10 s at 25 fps, 1280×720. No occlusion is longer than the tracker's default maxAgeMs (1.5 s).
 */
export function occlusionScene(options: Partial<SceneOptions> = {}): Scene {
  const walk = (id: number, at: [x: number, y: number, ms: number], velocityPxPerS: [number, number]): SceneObject =>
    object(id, PERSON, personSizeWh(at[1], HD[1]), at, velocityPxPerS);
  const objects = [
    object(1, CAR, [200, 150], [640, 560, 0], [0, 0]),
    walk(2, [640, 520, 2500], [160, 0]),
    walk(3, [640, 500, 6000], [-140, 0]),
    walk(4, [400, 640, 4000], [100, 0]),
    walk(5, [400, 610, 4000], [-110, 0]),
    walk(6, [900, 690, 7500], [150, 0]),
    walk(7, [900, 670, 7500], [80, 0]),
  ];
  return build('occlusion', 'behind a parked van (hidden 0.9 s; partly, 1.5 s), behind a passer-by, overtaken (hidden 0.65 s)', objects, regularTimes(10_000), HD, options, 10);
}

/**
 * A crowd: `objects` people and cars (15 %) at once, walking across at 40–140 px/s (cars faster); each one that
 * leaves at an edge is replaced by a new one entering at an edge. Default 40 objects, 10 s at 25 fps, 1920×1080.
 */
export function denseScene(options: Partial<SceneOptions & { objects: number; durationMs: number; frameWh: [number, number] }> = {}): Scene {
  const frameWh = options.frameWh ?? [1920, 1080];
  const durationMs = options.durationMs ?? 10_000;
  const rng = seededRng(options.seed ?? 11);
  const objects = crowd(options.objects ?? 40, durationMs, frameWh, rng);
  return build('dense', `${options.objects ?? 40} objects at once, entering and leaving at the edges`, objects, regularTimes(durationMs), frameWh, { ...options, seed: rng.int(0, 2 ** 31) }, 11);
}

/**
 * A live source that drops frames: 12 objects crossing (as `dense`), 12 s nominally at 25 fps, but 15 % of frames
 * dropped at random, bursts of 3–12 frames (120–480 ms) dropped, and ±3 ms jitter on capture times.
 */
export function droppedFramesScene(options: Partial<SceneOptions> = {}): Scene {
  const rng = seededRng(options.seed ?? 12);
  const durationMs = 12_000;
  const objects = crowd(12, durationMs, HD, rng);
  const timesMs: number[] = [];
  for (let frame = 0; frame * FRAME_MS <= durationMs; frame++) {
    if (rng.chance(0.03)) {
      frame += rng.int(3, 12) - 1; // this frame and the next ones
      continue;
    }
    if (rng.chance(0.15)) continue;
    timesMs.push(Math.max(timesMs.at(-1) ?? -1, frame * FRAME_MS + rng.uniform(-3, 3)));
  }
  return build('dropped-frames', '12 objects; 15 % of frames dropped, bursts of 120–480 ms, ±3 ms time jitter', objects, timesMs, HD, { ...options, seed: rng.int(0, 2 ** 31) }, 12);
}

/** The scene generators by name, in the suite's order. */
export const SCENES: Readonly<Record<SceneName, (options?: Partial<SceneOptions>) => Scene>> = Object.freeze({
  crossing: crossingScene,
  occlusion: occlusionScene,
  dense: denseScene,
  'dropped-frames': droppedFramesScene,
});

/** Every scene of the suite, each with its default seed unless `seed` is given. */
export function syntheticScenes(options: Partial<SceneOptions> = {}): Scene[] {
  return Object.values(SCENES).map((make) => make(options));
}

function build(name: SceneName, description: string, objects: SceneObject[], timesMs: number[], frameWh: [number, number], options: Partial<SceneOptions>, defaultSeed: number): Scene {
  const noise = { ...DEFAULT_NOISE, ...options.noise };
  const rng = seededRng(options.seed ?? defaultSeed);
  return { name, description, frameWh, frames: timesMs.map((t) => renderFrame(objects, t, frameWh, noise, rng)) };
}

function object(id: number, classId: number, sizeWh: [number, number], [x, y, atMs]: [number, number, number], velocityPxPerS: [number, number]): SceneObject {
  return { id, classId, sizeWh, bottomCenterPx: [x, y], atMs, velocityPxPerS, startMs: 0, endMs: Number.POSITIVE_INFINITY };
}

function regularTimes(durationMs: number): number[] {
  return Array.from({ length: Math.floor(durationMs / FRAME_MS) }, (_, i) => i * FRAME_MS);
}

/**
 * `slots` objects at any time: the first ones anywhere in the frame, each later one entering at the left or right
 * edge when its predecessor has left at the other. Vertical drift is bounded so they leave at the side edges.
 */
function crowd(slots: number, durationMs: number, frameWh: [number, number], rng: Rng): SceneObject[] {
  const [width, height] = frameWh;
  const objects: SceneObject[] = [];
  for (let slot = 0; slot < slots; slot++) {
    let startMs = 0;
    while (startMs <= durationMs) {
      const isCar = rng.chance(0.15);
      const bottom = rng.uniform(0.25 * height, height);
      const [pw, ph] = personSizeWh(bottom, height);
      const sizeWh: [number, number] = isCar ? [2.2 * ph, 0.6 * ph] : [pw, ph];
      // Speeds scale with apparent size, as a real walker's do under perspective.
      const speed = rng.uniform(40, 140) * (ph / 200) * (isCar ? 2.5 : 1);
      const direction = rng.chance(0.5) ? 1 : -1;
      const x = startMs === 0 ? rng.uniform(0, width) : direction > 0 ? -sizeWh[0] / 2 : width + sizeWh[0] / 2;
      const exitX = direction > 0 ? width + sizeWh[0] / 2 : -sizeWh[0] / 2;
      const travelS = Math.abs(exitX - x) / speed;
      const drift = rng.uniform(-0.2, 0.2) * speed;
      // Keep the bottom inside [0.25 h, h] until the object has left.
      const driftPxPerS = Math.min(Math.max(drift, (0.25 * height - bottom) / travelS), (height - bottom) / travelS);
      const endMs = startMs + travelS * 1000;
      objects.push({
        id: objects.length + 1,
        classId: isCar ? CAR : PERSON,
        sizeWh,
        bottomCenterPx: [x, bottom],
        atMs: startMs,
        velocityPxPerS: [direction * speed, driftPxPerS],
        startMs,
        endMs,
      });
      startMs = endMs + 1;
    }
  }
  return objects;
}
