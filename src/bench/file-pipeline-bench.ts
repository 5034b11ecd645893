import type { EngineName } from '../config/schema.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPipeline } from '../pipeline/create-pipeline.js';
import { STAGES, type RunSummary } from '../metrics/run-stats.js';

export interface BenchCase {
  name: string;
  clip: string;
  model: string;
  engine: EngineName;
  maxFrames: number | null;
}

export interface BenchRow {
  mode: 'sequential' | 'overlapped';
  summary: RunSummary;
}

/**
 * The same clip and model twice, in one process, one after the other: the sequential loop (one frame at a time
 * through read → preprocess → infer → annotate → write: ring of 1, one frame in flight) and the overlapped
 * pipeline (double-buffered ring, frames in flight), both writing the MP4 and the events file.
 */
export async function benchFilePipeline(c: BenchCase): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'visionpipe-bench-'));
  const rows: BenchRow[] = [];
  try {
    for (const [mode, ringSize, maxInFlight] of [
      ['sequential', 1, 1],
      ['overlapped', 2, 4],
    ] as const) {
      const pipeline = await createPipeline({
        source: { uri: c.clip, maxFrames: c.maxFrames },
        model: c.model,
        engine: c.engine,
        pipeline: { ringSize, maxInFlight },
        output: { video: join(dir, `${mode}.mp4`), events: join(dir, `${mode}.jsonl`) },
      });
      rows.push({ mode, summary: await pipeline.run() });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** A side-by-side table with the ratio and the bound 1 / max(stage). */
export function formatBench(c: BenchCase, rows: BenchRow[]): string {
  const [seq, ovl] = rows.map((r) => r.summary);
  if (seq === undefined || ovl === undefined) return '';
  const header = `| stage (mean ms/frame) | sequential | overlapped |`;
  const lines = STAGES.map((s) => `| ${s} | ${seq.meanStageMs[s].toFixed(2)} | ${ovl.meanStageMs[s].toFixed(2)} |`);
  const slowest = (r: RunSummary) => {
    const busy = STAGES.filter((s) => s !== 'queue').map((s) => [s, r.meanStageMs[s]] as const);
    return busy.reduce((a, b) => (b[1] > a[1] ? b : a));
  };
  const [bStage, bMs] = slowest(ovl);
  return [
    `### ${c.name}: ${c.model} on ${c.clip}${c.maxFrames === null ? '' : ` (first ${c.maxFrames} frames)`}`,
    `engine: ${ovl.engine}`,
    '',
    '| | sequential | overlapped |',
    '|---|---|---|',
    `| frames | ${seq.frames} | ${ovl.frames} |`,
    `| end-to-end fps | ${seq.fps.toFixed(2)} | ${ovl.fps.toFixed(2)} |`,
    `| latency p50 / p99 ms | ${seq.latencyMs.p50.toFixed(1)} / ${seq.latencyMs.p99.toFixed(1)} | ${ovl.latencyMs.p50.toFixed(1)} / ${ovl.latencyMs.p99.toFixed(1)} |`,
    `| bytes copied per frame (preprocess) | ${seq.bytesCopiedPerFrame.toFixed(0)} | ${ovl.bytesCopiedPerFrame.toFixed(0)} |`,
    '',
    header,
    '|---|---|---|',
    ...lines,
    '',
    `overlapped / sequential fps ratio: **${(ovl.fps / seq.fps).toFixed(2)}x**`,
    `bound 1/max(stage) for the overlapped run: ${(1000 / bMs).toFixed(2)} fps (slowest stage: ${bStage}, ${bMs.toFixed(2)} ms); reached ${((100 * ovl.fps * bMs) / 1000).toFixed(0)} %`,
    '',
  ].join('\n');
}
