import type { StageTimingsMs } from '../pipeline/frame.js';

export const STAGES = ['read', 'preprocess', 'queue', 'infer', 'postprocess', 'annotate', 'write'] as const satisfies ReadonlyArray<keyof StageTimingsMs>;

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
  /** Files written, by sink name. */
  outputs: Record<string, string>;
  engine: string;
}

/** Accumulates per-frame timings into a RunSummary. */
export class RunStats {
  frames = 0;
  private readonly sums: StageTimingsMs = { read: 0, preprocess: 0, queue: 0, infer: 0, postprocess: 0, annotate: 0, write: 0 };
  private readonly latencies: number[] = [];
  private bytesCopied = 0;

  constructor(private readonly startMs: number) {}

  add(timings: StageTimingsMs, latencyMs: number, bytesCopied: number): void {
    this.frames++;
    for (const stage of STAGES) this.sums[stage] += timings[stage];
    this.latencies.push(latencyMs);
    this.bytesCopied += bytesCopied;
  }

  summary(nowMs: number, extra: Pick<RunSummary, 'drops' | 'ringWaits' | 'stoppedEarly' | 'outputs' | 'engine'>): RunSummary {
    const elapsedMs = nowMs - this.startMs;
    const n = Math.max(1, this.frames);
    const mean = Object.fromEntries(STAGES.map((s) => [s, this.sums[s] / n])) as unknown as StageTimingsMs;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return {
      frames: this.frames,
      elapsedMs,
      fps: elapsedMs > 0 ? (this.frames * 1000) / elapsedMs : 0,
      meanStageMs: mean,
      latencyMs: { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: sorted.at(-1) ?? 0 },
      bytesCopiedPerFrame: this.bytesCopied / n,
      ...extra,
    };
  }
}

/** Nearest-rank percentile of an ascending array (0 when empty). */
export function percentile(sortedAsc: readonly number[], p: number): number {
  if (sortedAsc.length === 0) return 0;
  const rank = Math.min(sortedAsc.length - 1, Math.max(0, Math.ceil((p / 100) * sortedAsc.length) - 1));
  return sortedAsc[rank] ?? 0;
}
