import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EngineName } from '../config/schema.js';
import { percentile, type RunSummary } from '../metrics/run-stats.js';
import { createPipeline, type Pipeline } from '../pipeline/create-pipeline.js';
import { RtspServer, freePort, makeFrames } from './rtsp-server.js';
import { SilentTcpServer } from './silent-tcp-server.js';

export interface CameraFaultsOptions {
  clip?: string;
  /** Length of the fault phase (4 cameras), seconds. */
  faultS: number;
  /** Length of the baseline phase (the healthy camera alone), seconds. */
  aloneS: number;
  model: string;
  engine: EngineName;
  /** What each RTSP camera serves. */
  sourceFps: number;
}

export interface CameraRow {
  camera: string;
  fault: string;
  predictions: number;
  /** Over the phase after its warm-up. */
  predictionsPerS: number;
  /** Times the camera went `live` (1 = connected once; more = it came back). */
  liveCount: number;
  drops: Record<string, number>;
}

export interface LatencyWindow {
  fromS: number;
  toS: number;
  p50Ms: number;
  p99Ms: number;
  n: number;
}

export interface CameraFaultsResult {
  sourceFps: number;
  engine: string;
  warmUpS: { alone: number; fault: number };
  alone: { durationS: number; predictionsPerS: number; lagP99Ms: number; runError: string | null };
  fault: {
    durationS: number;
    cameras: CameraRow[];
    /** What the fault script did, when (seconds into the fault phase). */
    timeline: Array<{ atS: number; what: string }>;
    lagP99Ms: number;
    lagMaxMs: number;
    healthyFirst: LatencyWindow;
    healthyLast: LatencyWindow;
    rssStartMiB: number;
    rssEndMiB: number;
    /** Why run() rejected, when it did (the numbers are then what was observed until then). */
    runError: string | null;
  };
}

/** One pipeline run over `urls` for `durationS`, with `steps` played at their times; all it measures. */
interface PhaseResult {
  durationS: number;
  predictionsAfterWarmUp: number[];
  predictions: number[];
  liveCount: number[];
  /** Drops by reason per camera (non-zero only), from summary.drops. */
  drops: Array<Record<string, number>>;
  engine: string | null;
  runError: string | null;
  lagP99Ms: number;
  lagMaxMs: number;
  rssStart: number;
  rssEnd: number;
  timeline: Array<{ atS: number; what: string }>;
  first: LatencyWindow;
  last: LatencyWindow;
}

interface FaultStep {
  atS: number;
  what: string;
  act: () => Promise<void> | void;
}

/** Rates and RSS are taken after this: the cameras connect and the model warms up before it. */
export const warmUpSeconds = (durationS: number): number => Math.min(20, durationS / 4);
/** Latency windows of the healthy camera: a minute, or less in a short dry run so that first and last do not overlap. */
const latencyWindowSeconds = (durationS: number): number => Math.min(60, durationS / 2);
/** After stop(), how long run() may take to finalise before the bench calls it a hang. */
const STOP_GRACE_MS = 60_000;

/**
 * Camera faults on real servers, all on 127.0.0.1: camera 1 healthy throughout; camera 2 killed and restarted on
 * the same port; camera 3 frozen (SIGSTOP) then resumed (SIGCONT); camera 4 a TCP server that accepts and never
 * answers. First the healthy camera runs alone (same model and settings) as the baseline for its rate. Reports
 * per-camera predictions/s, drops by reason, event-loop lag p99, the healthy camera's capture → prediction latency
 * in the first and last minute, and RSS after the warm-up vs at the end.
 */
export async function benchCameraFaults(options: CameraFaultsOptions): Promise<CameraFaultsResult> {
  const dir = mkdtempSync(join(tmpdir(), 'visionpipe-faults-bench-'));
  // Every server this bench starts, including a restarted camera 2, so that finally stops them all.
  const rtsp: RtspServer[] = [];
  let silent: SilentTcpServer | undefined;
  try {
    const framesDir = makeFrames(join(dir, 'frames'), 250, options.clip);
    const startCamera = async (port: number): Promise<RtspServer> => {
      const server = await startRtspOnPort(port, framesDir, options.sourceFps);
      rtsp.push(server);
      return server;
    };
    const healthy = await startCamera(await freePort());
    const alone = await runPhase(options, dir, 'alone', [healthy.url], options.aloneS, []);

    const restarting = await startCamera(await freePort());
    const freezing = await startCamera(await freePort());
    silent = await SilentTcpServer.start();
    const f = options.faultS;
    const steps: FaultStep[] = [
      { atS: 0.25 * f, what: 'camera 2 killed (SIGKILL)', act: () => restarting.kill() },
      { atS: 0.45 * f, what: 'camera 2 restarted on the same port', act: async () => void (await startCamera(restarting.port)) },
      { atS: 0.5 * f, what: 'camera 3 frozen (SIGSTOP)', act: () => freezing.pause() },
      { atS: 0.7 * f, what: 'camera 3 resumed (SIGCONT)', act: () => freezing.resume() },
    ];
    const fault = await runPhase(options, dir, 'fault', [healthy.url, restarting.url, freezing.url, silent.url], f, steps);
    const silentConnections = silent.connections;

    const faults = ['healthy', 'killed, restarted', 'frozen, resumed', `accepts, never answers (${silentConnections} connections)`];
    const cameras = faults.map((description, i): CameraRow => ({
      camera: `camera ${i + 1}`,
      fault: description,
      predictions: fault.predictions[i] ?? 0,
      predictionsPerS: (fault.predictionsAfterWarmUp[i] ?? 0) / (fault.durationS - warmUpSeconds(f)),
      liveCount: fault.liveCount[i] ?? 0,
      drops: fault.drops[i] ?? {},
    }));
    return {
      sourceFps: options.sourceFps,
      engine: fault.engine ?? alone.engine ?? options.engine,
      warmUpS: { alone: warmUpSeconds(options.aloneS), fault: warmUpSeconds(f) },
      alone: {
        durationS: alone.durationS,
        predictionsPerS: (alone.predictionsAfterWarmUp[0] ?? 0) / (alone.durationS - warmUpSeconds(options.aloneS)),
        lagP99Ms: alone.lagP99Ms,
        runError: alone.runError,
      },
      fault: {
        durationS: fault.durationS,
        cameras,
        timeline: fault.timeline,
        lagP99Ms: fault.lagP99Ms,
        lagMaxMs: fault.lagMaxMs,
        healthyFirst: fault.first,
        healthyLast: fault.last,
        rssStartMiB: fault.rssStart / 2 ** 20,
        rssEndMiB: fault.rssEnd / 2 ** 20,
        runError: fault.runError,
      },
    };
  } finally {
    await Promise.allSettled([...rtsp.map((s) => s.kill()), silent?.close()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A restarted camera may find its port still held for a moment by the killed one's sockets: retry briefly. */
async function startRtspOnPort(port: number, framesDir: string, fps: number): Promise<RtspServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await RtspServer.start({ port, framesDir, fps });
    } catch (err) {
      if (attempt >= 5) throw err;
      await sleep(1000);
    }
  }
}

async function runPhase(options: CameraFaultsOptions, dir: string, name: string, urls: string[], durationS: number, steps: FaultStep[]): Promise<PhaseResult> {
  const pipeline: Pipeline = await createPipeline({
    source: urls.map((uri) => ({ uri })),
    model: options.model,
    engine: options.engine,
    // A cheap sink, so that the run also writes something; an MP4 per camera would load the 2 cores with encoding.
    output: { events: join(dir, `${name}.jsonl`) },
  });
  // Config order = source order; ids are the (credential-free) URLs, which is how summary.drops is keyed.
  const index = new Map(pipeline.sources.map((s, i) => [s.info.id, i]));
  const n = urls.length;
  const predictions = new Array<number>(n).fill(0);
  const predictionsAfterWarmUp = new Array<number>(n).fill(0);
  const liveCount = new Array<number>(n).fill(0);
  const warmUpMs = warmUpSeconds(durationS) * 1000;
  const windowMs = latencyWindowSeconds(durationS) * 1000;
  // Only the healthy camera's latencies inside the two windows are kept: bounded by window × fps.
  const firstLatencies: number[] = [];
  const lastLatencies: number[] = [];
  const timeline: Array<{ atS: number; what: string }> = [];
  const lag = monitorEventLoopDelay({ resolution: 10 });
  let rssStart = 0;
  let rssEnd = 0;
  let endMs: number | null = null;
  const startMs = performance.now();
  const sinceStartMs = () => performance.now() - startMs;

  const predSub = pipeline.predictions$.subscribe({
    next: (p) => {
      const atMs = sinceStartMs();
      const i = index.get(p.sourceId);
      if (i === undefined || endMs !== null) return;
      predictions[i]!++;
      if (atMs >= warmUpMs) predictionsAfterWarmUp[i]!++;
      if (i !== 0) return;
      if (atMs < windowMs) firstLatencies.push(p.latencyMs);
      if (atMs >= durationS * 1000 - windowMs) lastLatencies.push(p.latencyMs);
    },
    // run() reports the error; an unhandled error on a Subject would be thrown asynchronously and end the process.
    error: () => undefined,
  });
  const stateSub = pipeline.states$.subscribe({
    next: (e) => {
      const i = index.get(e.source);
      if (i !== undefined && e.state === 'live') liveCount[i]!++;
    },
    error: () => undefined,
  });

  const abort = new AbortController();
  const rssTimer = setTimeout(() => (rssStart = process.memoryUsage().rss), warmUpMs);
  let stopped!: () => void;
  const stoppedP = new Promise<void>((resolve) => (stopped = resolve));
  const stopTimer = setTimeout(() => {
    // Measured at the end of the phase, before stop(): finalising the outputs is not part of the fault phase.
    endMs = sinceStartMs();
    rssEnd = process.memoryUsage().rss;
    lag.disable();
    abort.abort();
    pipeline.stop();
    stopped();
  }, durationS * 1000);
  // Faults are played one after another at their times; a step that throws is recorded, not fatal to the run.
  const script = (async () => {
    for (const step of steps) {
      const waitMs = startMs + step.atS * 1000 - performance.now();
      try {
        if (waitMs > 0) await sleep(waitMs, undefined, { signal: abort.signal });
        await step.act();
        timeline.push({ atS: sinceStartMs() / 1000, what: step.what });
      } catch (err) {
        if (abort.signal.aborted) return;
        timeline.push({ atS: sinceStartMs() / 1000, what: `${step.what} FAILED: ${(err as Error).message.split('\n')[0]}` });
      }
    }
  })();

  lag.enable();
  let summary: RunSummary | null = null;
  let runError: string | null = null;
  let graceTimer: NodeJS.Timeout | undefined;
  try {
    const hang = stoppedP.then(
      () =>
        new Promise<never>((_, reject) => {
          graceTimer = setTimeout(() => reject(new Error(`run() did not end within ${STOP_GRACE_MS / 1000} s of stop()`)), STOP_GRACE_MS);
        }),
    );
    summary = await Promise.race([pipeline.run(), hang]);
  } catch (err) {
    runError = (err as Error).message.split('\n')[0] ?? String(err);
    // The reworked pipeline attaches the run's numbers to its error.
    summary = (err as { summary?: RunSummary }).summary ?? null;
  } finally {
    clearTimeout(stopTimer);
    clearTimeout(rssTimer);
    clearTimeout(graceTimer);
    abort.abort();
    await script;
    lag.disable();
    predSub.unsubscribe();
    stateSub.unsubscribe();
  }
  // A run that ended before its time (an error) is measured up to then.
  endMs ??= sinceStartMs();
  if (rssEnd === 0) rssEnd = process.memoryUsage().rss;
  const window = (values: number[], fromMs: number, toMs: number): LatencyWindow => {
    const sorted = values.sort((a, b) => a - b);
    return { fromS: fromMs / 1000, toS: toMs / 1000, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), n: sorted.length };
  };
  return {
    durationS: endMs / 1000,
    predictions,
    predictionsAfterWarmUp,
    liveCount,
    drops: pipeline.sources.map((s) => nonZero(summary?.drops[s.info.id] ?? {})),
    engine: summary?.engine ?? null,
    runError,
    // Node's histogram counts the whole timer interval, so an idle loop already reads ~10 ms (resolution).
    lagP99Ms: lag.count === 0 ? 0 : lag.percentile(99) / 1e6,
    lagMaxMs: lag.count === 0 ? 0 : lag.max / 1e6,
    rssStart,
    rssEnd,
    timeline,
    first: window(firstLatencies, 0, windowMs),
    last: window(lastLatencies, durationS * 1000 - windowMs, durationS * 1000),
  };
}

function nonZero(drops: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(drops).filter(([, v]) => v > 0));
}

const passFail = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');

export function formatCameraFaults(r: CameraFaultsResult): string {
  const f = r.fault;
  const healthy = f.cameras[0];
  const rateRatio = healthy === undefined || r.alone.predictionsPerS === 0 ? 0 : healthy.predictionsPerS / r.alone.predictionsPerS;
  const rssGrowthPct = f.rssStartMiB === 0 ? Number.NaN : (100 * (f.rssEndMiB - f.rssStartMiB)) / f.rssStartMiB;
  const drops = (d: Record<string, number>) => (Object.keys(d).length === 0 ? 'none' : Object.entries(d).map(([k, v]) => `${k} ${v}`).join(', '));
  const lat = (name: string, w: LatencyWindow) => `| ${name} (${w.fromS.toFixed(0)}–${w.toS.toFixed(0)} s) | ${w.p50Ms.toFixed(0)} | ${w.p99Ms.toFixed(0)} | ${w.n} |`;
  return [
    `### camera faults: 4 RTSP cameras at ${r.sourceFps} fps, ${f.durationS.toFixed(0)} s (after camera 1 alone for ${r.alone.durationS.toFixed(0)} s)`,
    `engine: ${r.engine}; rates and RSS after a warm-up of ${r.warmUpS.fault.toFixed(0)} s (alone: ${r.warmUpS.alone.toFixed(0)} s)`,
    ...(r.alone.runError === null ? [] : [`**run() failed (camera 1 alone)**: ${r.alone.runError}`]),
    ...(f.runError === null ? [] : [`**run() failed**: ${f.runError}`]),
    '',
    '| camera | fault | predictions | predictions/s | went live | dropped |',
    '|---|---|---|---|---|---|',
    ...f.cameras.map((c) => `| ${c.camera} | ${c.fault} | ${c.predictions} | ${c.predictionsPerS.toFixed(2)} | ${c.liveCount}x | ${drops(c.drops)} |`),
    '',
    `faults: ${f.timeline.map((t) => `${t.atS.toFixed(1)} s ${t.what}`).join('; ')}`,
    '',
    '| camera 1: capture → prediction | p50 ms | p99 ms | predictions |',
    '|---|---|---|---|',
    lat('first minute', f.healthyFirst),
    lat('last minute', f.healthyLast),
    '',
    `event-loop delay (monitorEventLoopDelay, 10 ms resolution, included): p99 ${f.lagP99Ms.toFixed(1)} ms, max ${f.lagMaxMs.toFixed(0)} ms (camera 1 alone: p99 ${r.alone.lagP99Ms.toFixed(1)} ms)`,
    `RSS: ${f.rssStartMiB.toFixed(0)} MiB after the warm-up, ${f.rssEndMiB.toFixed(0)} MiB at the end`,
    '',
    `- ${passFail(Math.abs(rateRatio - 1) <= 0.1)} camera 1 rate ${healthy?.predictionsPerS.toFixed(2) ?? '?'}/s vs ${r.alone.predictionsPerS.toFixed(2)}/s alone: **${(100 * rateRatio).toFixed(0)} %** (target within 10 %)`,
    `- ${passFail(f.lagP99Ms < 50)} event-loop lag p99 **${f.lagP99Ms.toFixed(1)} ms** (target < 50 ms)`,
    `- ${passFail(rssGrowthPct < 5)} RSS growth **${rssGrowthPct.toFixed(1)} %** (target < 5 %)`,
    '',
  ].join('\n');
}
