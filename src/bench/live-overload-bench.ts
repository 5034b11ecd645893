import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPipeline } from '../pipeline/create-pipeline.js';
import { percentile } from '../metrics/run-stats.js';
import { RtspServer, freePort, makeFrames } from './rtsp-server.js';

export interface LiveOverloadResult {
  sourceFps: number;
  durationS: number;
  frames: number;
  modelFps: number;
  drops: Record<string, number>;
  first10s: { p50: number; p99: number; n: number };
  last10s: { p50: number; p99: number; n: number };
  peakRssMiB: number;
  rssAt10sMiB: number;
  rssAtEndMiB: number;
  engine: string;
  justInTime: boolean;
  /** Median worker inference time during the run (the stage timing), ms. */
  inferMs: number;
}

/**
 * A real RTSP server on 127.0.0.1 serving `sourceFps` while the default detector sustains far less: capture →
 * prediction latency in the first and last 10 s, frames processed and dropped by reason, and peak RSS.
 */
export async function benchLiveOverload(options: { clip?: string; durationS: number; sourceFps: number; model: string; engine: 'onnx' | 'tfjs'; justInTime?: boolean }): Promise<LiveOverloadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'visionpipe-live-bench-'));
  const server = await RtspServer.start({ port: await freePort(), framesDir: makeFrames(join(dir, 'frames'), 250, options.clip), fps: options.sourceFps });
  try {
    const justInTime = options.justInTime ?? true;
    const pipeline = await createPipeline({
      source: { uri: server.url },
      model: options.model,
      engine: options.engine,
      pipeline: { justInTime },
      output: { video: join(dir, 'live.mp4') },
    });
    const samples: Array<{ atS: number; latencyMs: number }> = [];
    let peakRss = 0;
    let rssAt10s = 0;
    const startMs = performance.now();
    const rssTimer = setInterval(() => {
      const rss = process.memoryUsage().rss;
      peakRss = Math.max(peakRss, rss);
      if (rssAt10s === 0 && performance.now() - startMs > 10_000) rssAt10s = rss;
    }, 250);
    pipeline.predictions$.subscribe((p) => samples.push({ atS: (performance.now() - startMs) / 1000, latencyMs: p.latencyMs }));
    const stopTimer = setTimeout(() => pipeline.stop(), options.durationS * 1000);
    const summary = await pipeline.run();
    clearTimeout(stopTimer);
    clearInterval(rssTimer);
    const rssAtEnd = process.memoryUsage().rss;
    const window = (from: number, to: number) => {
      const l = samples.filter((s) => s.atS >= from && s.atS < to).map((s) => s.latencyMs).sort((a, b) => a - b);
      return { p50: percentile(l, 50), p99: percentile(l, 99), n: l.length };
    };
    const endS = samples.at(-1)?.atS ?? 0;
    return {
      sourceFps: options.sourceFps,
      durationS: endS,
      frames: summary.frames,
      modelFps: summary.fps,
      drops: summary.drops[server.url] ?? {},
      first10s: window(0, 10),
      last10s: window(endS - 10, endS + 1),
      peakRssMiB: peakRss / 2 ** 20,
      rssAt10sMiB: rssAt10s / 2 ** 20,
      rssAtEndMiB: rssAtEnd / 2 ** 20,
      engine: summary.engine,
      justInTime,
      inferMs: summary.meanStageMs.infer,
    };
  } finally {
    await server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Double buffering against just-in-time preprocessing, run one after the other on the same server settings, with
 * inference alone (same model and settings, nothing else running) as the floor the latency is measured against.
 */
export function formatLiveJustInTime(db: LiveOverloadResult, jit: LiveOverloadResult, aloneMs: number | null): string {
  const floor = aloneMs ?? jit.inferMs;
  const r = (x: number) => `${(x / floor).toFixed(2)}x`;
  return [
    `### live, just in time vs double buffering: RTSP at ${jit.sourceFps} fps, ${jit.engine}; inference alone ${floor.toFixed(1)} ms${aloneMs === null ? ' (the run’s mean inference)' : ''}`,
    '',
    '| | double buffering | just in time |',
    '|---|---|---|',
    `| model fps (throughput) | ${db.modelFps.toFixed(2)} | ${jit.modelFps.toFixed(2)} (${((100 * jit.modelFps) / db.modelFps).toFixed(0)} %) |`,
    `| capture → prediction p50, first 10 s | ${db.first10s.p50.toFixed(0)} ms (${r(db.first10s.p50)}) | ${jit.first10s.p50.toFixed(0)} ms (${r(jit.first10s.p50)}) |`,
    `| capture → prediction p50, last 10 s | ${db.last10s.p50.toFixed(0)} ms (${r(db.last10s.p50)}) | ${jit.last10s.p50.toFixed(0)} ms (${r(jit.last10s.p50)}) |`,
    `| capture → prediction p99, last 10 s | ${db.last10s.p99.toFixed(0)} ms (${r(db.last10s.p99)}) | ${jit.last10s.p99.toFixed(0)} ms (${r(jit.last10s.p99)}) |`,
    `| mean inference in the run | ${db.inferMs.toFixed(1)} ms | ${jit.inferMs.toFixed(1)} ms |`,
    `| dropped | ${Object.entries(db.drops).map(([k, v]) => `${k} ${v}`).join(', ')} | ${Object.entries(jit.drops).map(([k, v]) => `${k} ${v}`).join(', ')} |`,
    '',
    '(× = multiples of inference alone)',
    '',
  ].join('\n');
}

export function formatLiveOverload(r: LiveOverloadResult): string {
  return [
    `### live overload: RTSP at ${r.sourceFps} fps into a model that sustains ${r.modelFps.toFixed(2)} fps (${(r.sourceFps / r.modelFps).toFixed(1)}x overload), ${r.durationS.toFixed(0)} s${r.justInTime ? '' : ' (double buffering)'}`,
    `engine: ${r.engine}`,
    '',
    '| capture → prediction latency | p50 ms | p99 ms | predictions |',
    '|---|---|---|---|',
    `| first 10 s | ${r.first10s.p50.toFixed(0)} | ${r.first10s.p99.toFixed(0)} | ${r.first10s.n} |`,
    `| last 10 s | ${r.last10s.p50.toFixed(0)} | ${r.last10s.p99.toFixed(0)} | ${r.last10s.n} |`,
    '',
    `last/first p50 ratio: **${(r.last10s.p50 / Math.max(1, r.first10s.p50)).toFixed(2)}x** (alike = latency bounded)`,
    `frames processed: ${r.frames}; dropped: ${Object.entries(r.drops).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `RSS: ${r.rssAt10sMiB.toFixed(0)} MiB at 10 s, ${r.rssAtEndMiB.toFixed(0)} MiB at the end, peak ${r.peakRssMiB.toFixed(0)} MiB`,
    '',
  ].join('\n');
}
