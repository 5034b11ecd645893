import { beforeAll, describe, expect, it, vi } from 'vitest';
import { createTracker } from '../../../src/tracking/index.js';
import {
  crossingScene,
  denseScene,
  droppedFramesScene,
  evaluateTracker,
  occlusionScene,
  runScene,
  syntheticScenes,
  type Scene,
  type SceneName,
  type SceneScore,
} from '../../../src/tracking/eval/index.js';
import { iou } from '../../../src/tracking/iou.js';
import type { Track, Tracker, TrackInput } from '../../../src/tracking/types.js';

const centreX = (b: readonly number[]): number => ((b[0] ?? 0) + (b[2] ?? 0)) / 2;
const detectedAt = (scene: Scene, t: number, gtId: number, minIou = 0.5): TrackInput[] => {
  const gt = scene.frames[t]!.gt.find((g) => g.id === gtId);
  return gt === undefined ? [] : scene.frames[t]!.detections.filter((d) => iou(d.xyxy, gt.xyxy) >= minIou);
};

describe('synthetic scenes', () => {
  it('are deterministic: same seed, same scene; never call Math.random', () => {
    const random = vi.spyOn(Math, 'random').mockImplementation(() => {
      throw new Error('Math.random called');
    });
    try {
      expect(syntheticScenes()).toEqual(syntheticScenes());
      expect(occlusionScene({ seed: 3 })).toEqual(occlusionScene({ seed: 3 }));
      const [a, b] = [crossingScene({ seed: 1 }), crossingScene({ seed: 2 })];
      // Same layout (the truth), different detector noise.
      expect(a.frames.map((f) => f.gt)).toEqual(b.frames.map((f) => f.gt));
      expect(a.frames.map((f) => f.detections)).not.toEqual(b.frames.map((f) => f.detections));
    } finally {
      random.mockRestore();
    }
  });

  it('crossing: pairs of pedestrians swap sides while both are in view', () => {
    const scene = crossingScene();
    for (const [p, q] of [[1, 2], [3, 4], [5, 6]] as const) {
      const sides = new Set<number>();
      for (const f of scene.frames) {
        const [bp, bq] = [f.gt.find((g) => g.id === p), f.gt.find((g) => g.id === q)];
        if (bp !== undefined && bq !== undefined) sides.add(Math.sign(centreX(bp.xyxy) - centreX(bq.xyxy)));
      }
      // 0 when a frame falls exactly on the crossing.
      expect(sides.has(-1) && sides.has(1), `${p} and ${q}`).toBe(true);
    }
  });

  it('occlusion: an object goes undetected for 0.6–1 s, with low-score detections around it', () => {
    const scene = occlusionScene();
    let longestUnseenMs = 0;
    let lowScoreOnOccluded = 0;
    for (const id of new Set(scene.frames.flatMap((f) => f.gt.map((g) => g.id)))) {
      let unseenSinceMs: number | undefined;
      scene.frames.forEach((f, t) => {
        if (!f.gt.some((g) => g.id === id)) return;
        // IoU 0.5: the occluder's own detection overlaps a hidden object by up to ~0.33.
        const found = detectedAt(scene, t, id);
        if (found.length === 0) {
          unseenSinceMs ??= f.timeMs;
          longestUnseenMs = Math.max(longestUnseenMs, f.timeMs - unseenSinceMs + 40);
        } else {
          unseenSinceMs = undefined;
          if (found.some((d) => d.score < 0.5)) lowScoreOnOccluded++;
        }
      });
    }
    expect(longestUnseenMs).toBeGreaterThanOrEqual(600);
    // The "occlusions of up to 1 s".
    expect(longestUnseenMs).toBeLessThanOrEqual(1000);
    expect(lowScoreOnOccluded).toBeGreaterThan(50);
  });

  it('dense: ~40 objects at once, entering and leaving at the edges', () => {
    const scene = denseScene();
    const perFrame = scene.frames.map((f) => f.gt.length);
    const mean = perFrame.reduce((a, b) => a + b, 0) / perFrame.length;
    expect(mean).toBeGreaterThan(30);
    expect(mean).toBeLessThanOrEqual(40);
    const [width] = scene.frameWh;
    const firstBox = new Map<number, readonly number[]>();
    for (const f of scene.frames.slice(1)) for (const g of f.gt) if (!firstBox.has(g.id) && !scene.frames[0]!.gt.some((h) => h.id === g.id)) firstBox.set(g.id, g.xyxy);
    // Objects that appear after the start come in at the left or right edge (their box clipped there).
    expect(firstBox.size).toBeGreaterThan(10);
    for (const b of firstBox.values()) expect(b[0] === 0 || b[2] === width).toBe(true);
    expect(denseScene({ objects: 100, durationMs: 400, frameWh: [3840, 2160] }).frames[0]!.gt.length).toBeGreaterThan(90);
  });

  it('dropped-frames: irregular, increasing time steps with drops and bursts', () => {
    const steps = droppedFramesScene().frames.map((f, i, all) => (i === 0 ? 40 : f.timeMs - all[i - 1]!.timeMs));
    expect(Math.min(...steps)).toBeGreaterThan(30);
    expect(steps.filter((s) => s > 70).length).toBeGreaterThan(20); // single drops: ≥ 80 ms
    expect(Math.max(...steps)).toBeGreaterThanOrEqual(160); // a burst of ≥ 3 frames
    expect(steps.some((s) => s % 40 !== 0)).toBe(true); // capture-time jitter
  });

  it('detections: ~10 % of fully visible objects missed, ~1 false positive per frame, scores ~0.8', () => {
    const scene = crossingScene();
    let isolated = 0;
    let detected = 0;
    let falsePositives = 0;
    const scores: number[] = [];
    scene.frames.forEach((f, t) => {
      for (const g of f.gt) {
        if (f.gt.some((h) => h !== g && iou(h.xyxy, g.xyxy) > 0)) continue;
        isolated++;
        const found = detectedAt(scene, t, g.id);
        if (found.length > 0) detected++;
        scores.push(...found.map((d) => d.score));
      }
      falsePositives += f.detections.filter((d) => f.gt.every((g) => iou(g.xyxy, d.xyxy) < 0.1)).length;
    });
    expect(1 - detected / isolated).toBeGreaterThan(0.07);
    expect(1 - detected / isolated).toBeLessThan(0.13);
    expect(falsePositives / scene.frames.length).toBeGreaterThan(0.7);
    expect(falsePositives / scene.frames.length).toBeLessThan(1.3);
    expect(scores.reduce((a, b) => a + b, 0) / scores.length).toBeCloseTo(0.8, 1);
  });
});

describe('runScene', () => {
  it('feeds every frame at its time, after a reset, and takes only confirmed tracks as hypotheses', () => {
    const scene = crossingScene();
    const calls: Array<[number, number]> = [];
    let resets = 0;
    const track = (id: number, state: Track['state']): Track => ({ id, xyxy: [0, 0, 10, 10], classId: 0, score: 0.9, state, hits: 3, firstSeenMs: 0, lastSeenMs: 0, ageMs: 0 });
    const fake: Tracker = {
      update(detections, timeMs) {
        calls.push([detections.length, timeMs]);
        return [track(1, 'tentative'), track(2, 'confirmed'), track(3, 'lost'), track(4, 'removed')];
      },
      reset: () => void resets++,
    };
    const frames = runScene(scene, fake);
    expect(resets).toBe(1);
    expect(calls).toEqual(scene.frames.map((f) => [f.detections.length, f.timeMs]));
    expect(frames.map((f) => f.hyp)).toEqual(scene.frames.map(() => [{ id: 2, xyxy: [0, 0, 10, 10] }]));
    expect(frames.map((f) => f.gt)).toEqual(scene.frames.map((f) => f.gt));
  });
});

/**
 * The scene suite through the real tracker, 8 seeds per scene, counts summed (TrackEval's way of combining
 * sequences). Measured on the tracker as of this test (MOTA / IDF1 / ID switches over the 8 seeds):
 *   crossing 0.861 / 0.926 / 24; occlusion 0.860 / 0.905 / 22; dense 0.826 / 0.888 / 66; dropped-frames 0.851 / 0.904 / 10.
 * (Before the first stage gated IoU × score and maxAgeMs went from 1 s to 1.5 s: crossing 0.857 / 0.911 / 25;
 * occlusion 0.855 / 0.882 / 27; dense 0.823 / 0.876 / 86; dropped-frames 0.843 / 0.886 / 20.)
 * Floors sit about 0.03–0.05 under those and switch ceilings ~50 % over, so they catch regressions, not noise from
 * a retuned tracker.
 */
describe('tracker on the synthetic scenes (createTracker defaults)', () => {
  let scores: Map<SceneName, SceneScore>;
  beforeAll(() => {
    scores = new Map(evaluateTracker(() => createTracker()).map((s) => [s.scene, s]));
  });
  const score = (name: SceneName): SceneScore => scores.get(name)!;

  it.each([
    { scene: 'crossing', mota: 0.82, idf1: 0.88, idSwitches: 36 },
    { scene: 'occlusion', mota: 0.82, idf1: 0.87, idSwitches: 33 },
    { scene: 'dense', mota: 0.79, idf1: 0.85, idSwitches: 100 },
    { scene: 'dropped-frames', mota: 0.81, idf1: 0.86, idSwitches: 15 },
  ] as const)('$scene: MOTA ≥ $mota, IDF1 ≥ $idf1, ID switches ≤ $idSwitches', ({ scene, mota, idf1, idSwitches }) => {
    const s = score(scene);
    expect(s.clear.mota).toBeGreaterThanOrEqual(mota);
    expect(s.identity.idf1).toBeGreaterThanOrEqual(idf1);
    expect(s.clear.idSwitches).toBeLessThanOrEqual(idSwitches);
  });

  it('meets the issue-9 target IDF1 ≥ 0.9 on the crossing scene', () => {
    expect(score('crossing').identity.idf1).toBeGreaterThanOrEqual(0.9);
  });

  // Met since the first stage gates IoU × score (0.882 → 0.905 over these 8 seeds; 0.878 → 0.914 over seeds 9–24,
  // which the tracker was not tuned on): a stray detection no longer takes over the track of a hidden object.
  it('meets the issue-9 target IDF1 ≥ 0.9 on the occlusion scene', () => {
    expect(score('occlusion').identity.idf1).toBeGreaterThanOrEqual(0.9);
  });
});
