import type { StageTimingsMs } from '../pipeline/frame.js';
import { Histogram, type PercentileSummary } from './histogram.js';

export const STAGES = ['read', 'preprocess', 'queue', 'infer', 'postprocess', 'track', 'annotate', 'write'] as const satisfies ReadonlyArray<keyof StageTimingsMs>;

/** The closing numbers of a run. */
export interface RunSummary {
  frames: number;
  elapsedMs: number;
  /** frames / elapsed, end to end. */
  fps: number;
  /** Mean milliseconds per frame in each stage. */
  meanStageMs: StageTimingsMs;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  /** JS-visible bytes copied per frame by preprocessing (out of OpenCV, into the ring slot). */
  bytesCopiedPerFrame: number;
  /** Frames not run, per source and reason (live sources only drop). */
  drops: Record<string, Record<string, number>>;
  /** Times preprocessing waited for a free ring slot. */
  ringWaits: number;
  /** True when Pipeline.stop() ended the run before the source did. */
  stoppedEarly: boolean;
  /**
   * What went wrong with the input without stopping the run at once: sources that gave up, files that ended before
   * their declared frame count. Empty for a clean run.
   */
  sourceProblems: string[];
  /** Files written, by sink name. */
  outputs: Record<string, string>;
  /** Tracked sources: object events emitted, by type (empty when nothing is tracked). */
  objectEvents: Record<string, number>;
  /** Tracked sources: each line's final counts. */
  lineCounts: { source: string; line: string; in: number; out: number; byClass: Record<string, { in: number; out: number }> }[];
  engine: string;
  /** Frames per inference call (1 without batching; up to pipeline.maxBatch with several sources). */
  meanBatchSize: number;
}

/**
 * Accumulates per-frame timings into a RunSummary, in constant memory: latencies go into fixed-size histograms
 * (percentiles within 1 %, see Histogram), stage times into sums.
 */
export class RunStats {
  frames = 0;
  private readonly sums: StageTimingsMs = { read: 0, preprocess: 0, queue: 0, infer: 0, postprocess: 0, track: 0, annotate: 0, write: 0 };
  private readonly latencyMs = new Histogram();
  /** Latencies since the last latencyWindow() call. */
  private readonly windowLatencyMs = new Histogram();
  private bytesCopied = 0;

  constructor(private readonly startMs: number) {}

  add(timings: StageTimingsMs, latencyMs: number, bytesCopied: number): void {
    this.frames++;
    for (const stage of STAGES) this.sums[stage] += timings[stage];
    this.latencyMs.record(latencyMs);
    this.windowLatencyMs.record(latencyMs);
    this.bytesCopied += bytesCopied;
  }

  summary(nowMs: number, extra: Pick<RunSummary, 'drops' | 'ringWaits' | 'stoppedEarly' | 'outputs' | 'engine' | 'sourceProblems'> &
      Partial<Pick<RunSummary, 'objectEvents' | 'lineCounts' | 'meanBatchSize'>>): RunSummary {
    const elapsedMs = nowMs - this.startMs;
    const n = Math.max(1, this.frames);
    const mean = Object.fromEntries(STAGES.map((s) => [s, this.sums[s] / n])) as unknown as StageTimingsMs;
    return {
      frames: this.frames,
      elapsedMs,
      fps: elapsedMs > 0 ? (this.frames * 1000) / elapsedMs : 0,
      meanStageMs: mean,
      latencyMs: {
        p50: this.latencyMs.percentile(50),
        p95: this.latencyMs.percentile(95),
        p99: this.latencyMs.percentile(99),
        max: this.latencyMs.max,
      },
      bytesCopiedPerFrame: this.bytesCopied / n,
      objectEvents: {},
      lineCounts: [],
      meanBatchSize: 1,
      ...extra,
    };
  }

  /**
   * Read → prediction latency percentiles (ms) of the frames added since the previous call (or since the start),
   * and starts a new window: e.g. called once a minute, it gives each minute's p50 / p99.
   */
  latencyWindow(): PercentileSummary {
    const window = this.windowLatencyMs.summary();
    this.windowLatencyMs.reset();
    return window;
  }
}

/** Exact nearest-rank percentile of an ascending array (0 when empty); for small samples kept whole. */
export function percentile(sortedAsc: readonly number[], p: number): number {
  if (sortedAsc.length === 0) return 0;
  const rank = Math.min(sortedAsc.length - 1, Math.max(0, Math.ceil((p / 100) * sortedAsc.length) - 1));
  return sortedAsc[rank] ?? 0;
}
