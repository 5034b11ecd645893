import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigInput } from '../config/schema.js';
import type { RunSummary } from '../metrics/run-stats.js';
import { createPipeline } from '../pipeline/create-pipeline.js';

export type TrackingVariant = 'off' | 'on' | 'on + snapshots' | 'on + clips';

export interface TrackingPipelineRun {
  variant: TrackingVariant;
  summary: RunSummary;
}

export interface TrackingPipelineBench {
  clip: string;
  frames: number;
  /** Every run, in the order they ran (variants alternate, so drift in the machine's speed hits each alike). */
  runs: TrackingPipelineRun[];
}

/** The zone and line of config/examples/vtest-zone-line.yaml, in fractions so they fit any clip. */
const GEOMETRY = {
  track: { classes: ['person'] },
  zones: [{ name: 'road', units: 'fraction' as const, polygon: [[0.55, 0.45], [0.97, 0.45], [0.97, 0.82], [0.55, 0.72]] as [number, number][] }],
  lines: [{ name: 'gate', units: 'fraction' as const, from: [0.716, 0.46] as [number, number], to: [0.924, 0.46] as [number, number] }],
};

const VARIANTS = ['off', 'on', 'on + snapshots', 'on + clips'] as const;

/**
 * The default detector's whole pipeline (overlapped, MP4 + events file) with tracking off, on (a zone and a line,
 * drawn), on with snapshots, and on with event clips (a second, rolling x264 encode of every frame), in one
 * process, after a warm-up run, three times over (`rounds`, each starting with the next variant): each variant's
 * fps is the mean of its runs, which alternate so that drift in the machine's speed hits each variant alike.
 * Issue 9's target: tracking costs ≤ 3 % of fps.
 */
export async function benchTrackingPipeline(options: { clip: string; maxFrames: number; rounds?: number }): Promise<TrackingPipelineBench> {
  const dir = mkdtempSync(join(tmpdir(), 'visionpipe-bench-track-'));
  const runs: TrackingPipelineRun[] = [];
  try {
    // A warm-up run first (not counted): the first pipeline of a process pays for loading and JIT-compiling.
    await (await createPipeline({ source: { uri: options.clip, maxFrames: Math.min(50, options.maxFrames) }, model: 'centernet', engine: 'onnx' })).run();
    const variants = VARIANTS;
    for (let round = 1; round <= (options.rounds ?? 3); round++) {
      // Each round starts with a different variant, so none is always the one that runs right after another.
      for (const variant of variants.map((_, i) => variants[(i + round - 1) % variants.length] ?? 'off')) {
        const name = `${variant.replace(/[^a-z]+/g, '-')}-${round}`;
        const config: ConfigInput = {
          source: { uri: options.clip, maxFrames: options.maxFrames, ...(variant === 'off' ? {} : GEOMETRY) },
          model: 'centernet',
          engine: 'onnx',
          output: {
            video: join(dir, `${name}.mp4`),
            events: join(dir, `${name}.jsonl`),
            snapshots: variant === 'on + snapshots' ? join(dir, `${name}-snaps`) : null,
            clips: variant === 'on + clips' ? join(dir, `${name}-clips`) : null,
          },
        };
        const pipeline = await createPipeline(config);
        runs.push({ variant, summary: await pipeline.run() });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { clip: options.clip, frames: options.maxFrames, runs };
}

/** Markdown: fps per variant (mean of its runs), its ratio to tracking off, and the track / annotate stage times. */
export function formatTrackingPipelineBench(b: TrackingPipelineBench): string {
  const variants = VARIANTS;
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length);
  const of = (v: TrackingVariant) => b.runs.filter((r) => r.variant === v).map((r) => r.summary);
  const offFps = mean(of('off').map((s) => s.fps));
  const rows = variants.map((v) => {
    const runs = of(v);
    const fps = mean(runs.map((s) => s.fps));
    const events = mean(runs.map((s) => Object.values(s.objectEvents).reduce((a, n) => a + n, 0)));
    return `| tracking ${v} | ${runs.map((s) => s.fps.toFixed(2)).join(' / ')} | ${fps.toFixed(2)} | ${((100 * fps) / offFps).toFixed(1)} % | ${mean(runs.map((s) => s.meanStageMs.track)).toFixed(2)} | ${mean(runs.map((s) => s.meanStageMs.annotate)).toFixed(2)} | ${events.toFixed(0)} |`;
  });
  const onFps = mean(of('on').map((s) => s.fps));
  // Noise-free upper bound: the main-thread time tracking adds per frame (its stage plus the extra drawing), as a
  // share of the frame period when it is off. It runs beside inference (in the worker), so fps loses less than this.
  const offRuns = of('off');
  const onRuns = of('on');
  const addedMs =
    mean(onRuns.map((s) => s.meanStageMs.track)) + mean(onRuns.map((s) => s.meanStageMs.annotate)) - mean(offRuns.map((s) => s.meanStageMs.annotate));
  const periodMs = 1000 / offFps;
  const clipsFps = mean(of('on + clips').map((s) => s.fps));
  const clipCount = mean(of('on + clips').map((s) => s.objectEvents['clip.ready'] ?? 0));
  return [
    `### tracking in the pipeline: default detector (centernet, onnx) on ${b.clip}, first ${b.frames} frames, MP4 + events`,
    '',
    '| | fps per run (in run order) | fps mean | of tracking off | track ms/frame | annotate ms/frame | object events |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `tracking (a zone and a line, drawn) costs **${(100 - (100 * onFps) / offFps).toFixed(1)} %** of end-to-end fps (target ≤ 3 %; after a warm-up run, the variants alternate, ${offRuns.length} runs each; a negative cost is run-to-run noise)`,
    `event clips (every frame encoded once more into the rolling buffer, x264 ultrafast; ${clipCount.toFixed(0)} clips cut per run) cost **${(100 - (100 * clipsFps) / onFps).toFixed(1)} %** of fps against tracking on`,
    `main-thread time it adds per frame: ${addedMs.toFixed(2)} ms (track stage + extra drawing) = **${((100 * addedMs) / periodMs).toFixed(1)} %** of the ${periodMs.toFixed(1)} ms frame period with tracking off (an upper bound on the fps cost: it runs beside inference)`,
    '',
  ].join('\n');
}
