import { percentile } from '../metrics/run-stats.js';
import { createTracker } from '../tracking/index.js';
import { denseScene, evaluateTracker, runScene, type SceneName, type SceneScore } from '../tracking/eval/index.js';

/** Issue 9's quality targets: minimum IDF1 per scene. */
export const TRACKING_TARGETS: Readonly<Partial<Record<SceneName, { idf1: number }>>> = Object.freeze({
  crossing: { idf1: 0.9 },
  occlusion: { idf1: 0.9 },
});

export interface TrackingCost {
  /** Objects in the scene at once. */
  objects: number;
  /** Detections per frame, mean (fewer than objects: misses and occlusions; plus false positives). */
  meanDetections: number;
  frames: number;
  meanUpdateUs: number;
  p99UpdateUs: number;
}

export interface TrackingBenchResult {
  scenes: SceneScore[];
  cost: TrackingCost[];
}

/**
 * The default tracker (`createTracker()`) on every synthetic scene (CLEAR-MOT and IDF1, 8 seeds each), and its
 * cost per update at 10 and 100 objects. Pure CPU on this thread; a few seconds.
 */
export function benchTracking(options: { seeds?: number[]; costObjects?: number[] } = {}): TrackingBenchResult {
  const scenes = evaluateTracker(() => createTracker(), options.seeds === undefined ? {} : { seeds: options.seeds });
  return { scenes, cost: (options.costObjects ?? [10, 100]).map(costAt) };
}

/** Mean and p99 time of one `update`, in µs, on a crowd of `objects` (20 s at 25 fps, after a warm-up run). */
function costAt(objects: number): TrackingCost {
  // The frame grows with the crowd so the density (and so the overlap per object) matches the dense scene's 40
  // objects in 1920×1080: the cost is then about the object count, not a more crowded association problem.
  const scale = Math.sqrt(objects / 40);
  const scene = denseScene({ objects, durationMs: 20_000, frameWh: [Math.round(1920 * scale), Math.round(1080 * scale)] });
  // Warm-up: the first run pays for the JIT compiling the filter and the solver.
  runScene(scene, createTracker());
  const us: number[] = [];
  runScene(scene, createTracker(), { onUpdateUs: (durationUs) => us.push(durationUs) });
  us.sort((a, b) => a - b);
  return {
    objects,
    meanDetections: scene.frames.reduce((a, f) => a + f.detections.length, 0) / scene.frames.length,
    frames: scene.frames.length,
    meanUpdateUs: us.reduce((a, b) => a + b, 0) / us.length,
    p99UpdateUs: percentile(us, 99),
  };
}

/**
 * Markdown for `visionpipe bench`. With `endToEndFps` (the default detector's, from the same run), also the share
 * of a frame's time the tracker would take if it ran in series with everything else (an upper bound: in the
 * overlapped pipeline it runs beside inference). Issue 9's target: ≤ 3 %.
 */
export function formatTrackingBench(r: TrackingBenchResult, options: { endToEndFps?: number } = {}): string {
  const f3 = (v: number): string => v.toFixed(3);
  const seeds = r.scenes[0]?.seeds.length ?? 0;
  const lines = [
    `### tracking quality: createTracker() defaults on synthetic scenes (${seeds} seeds each, counts summed; hypotheses = confirmed tracks; IoU ≥ 0.5)`,
    '',
    '| scene | frames | MOTA (per seed) | IDF1 (per seed) | IDF1 target | ID switches | Frag | FN | FP | MOTP (IoU) |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...r.scenes.map((s) => {
      const target = TRACKING_TARGETS[s.scene];
      const verdict = target === undefined ? '' : `≥ ${target.idf1}: ${s.identity.idf1 >= target.idf1 ? 'met' : '**not met**'}`;
      return (
        `| ${s.scene} | ${s.frames} | ${f3(s.clear.mota)} (${f3(s.motaRange[0])}–${f3(s.motaRange[1])}) | ` +
        `**${f3(s.identity.idf1)}** (${f3(s.idf1Range[0])}–${f3(s.idf1Range[1])}) | ${verdict} | ${s.clear.idSwitches} | ` +
        `${s.clear.fragmentations} | ${s.clear.misses} | ${s.clear.falsePositives} | ${f3(s.clear.motpIou)} |`
      );
    }),
    '',
    ...r.scenes.map((s) => `- ${s.scene}: ${s.description}`),
    '',
    '### tracking cost per frame (one `update`, this thread)',
    '',
    `| objects | detections / frame | frames | mean µs | p99 µs |${options.endToEndFps === undefined ? '' : ' share of a frame at the default detector\'s fps |'}`,
    `|---|---|---|---|---|${options.endToEndFps === undefined ? '' : '---|'}`,
    ...r.cost.map((c) => {
      const share = options.endToEndFps === undefined ? '' : ` ${((c.meanUpdateUs / (1e6 / options.endToEndFps)) * 100).toFixed(2)} % (at ${options.endToEndFps.toFixed(1)} fps) |`;
      return `| ${c.objects} | ${c.meanDetections.toFixed(1)} | ${c.frames} | ${c.meanUpdateUs.toFixed(0)} | ${c.p99UpdateUs.toFixed(0)} |${share}`;
    }),
    '',
  ];
  return lines.join('\n');
}
