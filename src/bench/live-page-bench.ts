import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunSummary } from '../metrics/run-stats.js';
import { createPipeline } from '../pipeline/create-pipeline.js';

export type LivePageVariant = 'page off' | 'page on, 0 viewers' | 'page on, 3 viewers (1 stalled)';
const VARIANTS: readonly LivePageVariant[] = ['page off', 'page on, 0 viewers', 'page on, 3 viewers (1 stalled)'];

export interface LivePageRun {
  variant: LivePageVariant;
  summary: RunSummary;
  /** CPU time (user + system, all threads) of this process per frame, ms (onnxruntime's spinning threads make it follow wall time). */
  cpuMsPerFrame: number;
  /** The page's own work per frame, ms: copying frames on the main thread, JPEG encoding on libuv's pool; JPEGs sent. */
  page: { copyMsPerFrame: number; encodeMsPerFrame: number; jpegs: number } | null;
}

export interface LivePageBench {
  clip: string;
  frames: number;
  runs: LivePageRun[];
}

/**
 * The default detector's file pipeline (MP4 + events) with the live page off, on with nobody watching, and on with
 * three viewers of the MJPEG stream — two `curl`s reading it (separate processes, so their CPU is not counted
 * here) and one socket that sends its request and never reads — after a warm-up run, alternating, `rounds` times.
 * Issue 11's target: viewers cost ≤ 5 % of fps.
 */
export async function benchLivePage(options: { clip: string; maxFrames: number; rounds?: number }): Promise<LivePageBench> {
  const dir = mkdtempSync(join(tmpdir(), 'visionpipe-bench-page-'));
  const runs: LivePageRun[] = [];
  try {
    await (await createPipeline({ source: { uri: options.clip, maxFrames: Math.min(50, options.maxFrames) }, model: 'centernet', engine: 'onnx' })).run();
    for (let round = 1; round <= (options.rounds ?? 3); round++) {
      for (const variant of VARIANTS.map((_, i) => VARIANTS[(i + round - 1) % VARIANTS.length] ?? 'page off')) {
        const name = `${variant.replace(/[^a-z0-9]+/g, '-')}-${round}`;
        const pipeline = await createPipeline({
          source: { uri: options.clip, maxFrames: options.maxFrames },
          model: 'centernet',
          engine: 'onnx',
          output: { video: join(dir, `${name}.mp4`), events: join(dir, `${name}.jsonl`) },
          ...(variant === 'page off' ? {} : { ui: { port: 0 } }),
        });
        const viewers = variant.includes('3 viewers') && pipeline.uiUrl !== null ? await watch(pipeline.uiUrl) : null;
        const cpu = process.cpuUsage();
        let page: LivePageRun['page'] = null;
        let last: { jpegs: number; copyMs: number; encodeMs: number } | undefined;
        // The page's own accounting, read from its API until the run ends (the server closes with the pipeline).
        const poll = pipeline.uiUrl === null ? null : setInterval(() => void pageCosts(pipeline.uiUrl ?? '').then((c) => (last = c ?? last)), 500);
        const summary = await pipeline.run();
        if (poll !== null) clearInterval(poll);
        const used = process.cpuUsage(cpu);
        viewers?.stop();
        const frames = Math.max(1, summary.frames);
        if (last !== undefined) page = { copyMsPerFrame: last.copyMs / frames, encodeMsPerFrame: last.encodeMs / frames, jpegs: last.jpegs };
        runs.push({ variant, summary, cpuMsPerFrame: (used.user + used.system) / 1000 / frames, page });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { clip: options.clip, frames: options.maxFrames, runs };
}

async function pageCosts(uiUrl: string): Promise<{ jpegs: number; copyMs: number; encodeMs: number } | undefined> {
  try {
    const body = (await (await fetch(`${uiUrl}api/sources`)).json()) as { sources: { page: { jpegs: number; copyMs: number; encodeMs: number } }[] };
    return body.sources[0]?.page;
  } catch {
    return undefined; // the run has ended and its server with it
  }
}

/** Two reading viewers (curl) and one that never reads, on the first source's MJPEG stream. */
async function watch(uiUrl: string): Promise<{ stop(): void }> {
  const sources = (await (await fetch(`${uiUrl}api/sources`)).json()) as { sources: { name: string }[] };
  const stream = `${uiUrl}api/sources/${sources.sources[0]?.name ?? ''}/stream.mjpg`;
  const readers: ChildProcess[] = [0, 1].map(() => spawn('curl', ['-s', '-N', '-o', '/dev/null', stream], { stdio: 'ignore' }));
  const { hostname, port, pathname } = new URL(stream);
  const stalled: Socket = connect(Number(port), hostname, () => stalled.write(`GET ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
  stalled.pause();
  stalled.on('error', () => undefined);
  return {
    stop() {
      for (const r of readers) r.kill();
      stalled.destroy();
    },
  };
}

export function formatLivePageBench(b: LivePageBench): string {
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length);
  const of = (v: LivePageVariant) => b.runs.filter((r) => r.variant === v);
  const offFps = mean(of('page off').map((r) => r.summary.fps));
  const offCpu = mean(of('page off').map((r) => r.cpuMsPerFrame));
  const rows = VARIANTS.map((v) => {
    const runs = of(v);
    const fps = mean(runs.map((r) => r.summary.fps));
    const cpu = mean(runs.map((r) => r.cpuMsPerFrame));
    return `| ${v} | ${runs.map((r) => r.summary.fps.toFixed(2)).join(' / ')} | ${fps.toFixed(2)} | ${((100 * fps) / offFps).toFixed(1)} % | ${cpu.toFixed(1)} | ${(cpu - offCpu >= 0 ? '+' : '') + (cpu - offCpu).toFixed(2)} |`;
  });
  const watched = of('page on, 3 viewers (1 stalled)');
  const fpsCost = 100 - (100 * mean(watched.map((r) => r.summary.fps))) / offFps;
  const cpuCost = (100 * (mean(watched.map((r) => r.cpuMsPerFrame)) - offCpu)) / offCpu;
  const pages = watched.flatMap((r) => (r.page === null ? [] : [r.page]));
  const copyMs = mean(pages.map((p) => p.copyMsPerFrame));
  const encodeMs = mean(pages.map((p) => p.encodeMsPerFrame));
  const periodMs = 1000 / offFps;
  return [
    `### live page: default detector (centernet, onnx) on ${b.clip}, first ${b.frames} frames, MP4 + events, viewers at ui.maxFps 5`,
    '',
    '| | fps per run (in run order) | fps mean | of page off | process CPU ms / frame | vs page off |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    `three viewers (one stalled) cost **${fpsCost.toFixed(1)} %** of fps (target ≤ 5 %; a negative cost is run-to-run noise) and ${cpuCost.toFixed(1)} % of the process's CPU per frame (which onnxruntime's spin-waiting threads tie to wall time)`,
    `the page's own work, measured where it happens: ${copyMs.toFixed(2)} ms per frame copying (main thread) and ${encodeMs.toFixed(2)} ms encoding JPEGs (libuv's pool; ${mean(pages.map((p) => p.jpegs)).toFixed(0)} JPEGs per run, shared by the viewers): ` +
      `**${((100 * (copyMs + encodeMs)) / periodMs).toFixed(1)} %** of the ${periodMs.toFixed(1)} ms frame period with the page off (an upper bound on its fps cost)`,
    '',
  ].join('\n');
}
