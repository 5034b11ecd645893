import { existsSync, mkdirSync } from 'node:fs';
import { VisionpipeError } from '../errors.js';
import type { Logger } from '../log.js';
import { partialPathOf } from './output-path.js';
import { applyRetention, type RetentionLimits } from './retention.js';
import { segmentBaseOf, segmentPathOf, segmentPatternOf, windowEndMs, type SegmentBase } from './segment-name.js';

/** One segment's file: written under `<path>.partial`, renamed to its path by `close`. */
export interface SegmentFile<T> {
  write(item: T): Promise<void>;
  /** Finalises (playable, renamed); resolves with the final path. */
  close(): Promise<string>;
  /** Keeps what was written as `.partial`; resolves with that path, or null when nothing was written. */
  abort(): Promise<string | null>;
}

export interface SegmentedOutputOptions<T, F extends SegmentFile<T>> {
  /** The un-segmented path (`out/cam.mp4`); segments are `out/cam.<UTC start>.mp4`. */
  path: string;
  segmentSeconds: number;
  retention: RetentionLimits;
  /** The time (epoch ms) an item belongs to; it decides the item's segment. */
  timeMsOf(item: T): number;
  /** Opens the file of a new segment, given the first item that goes into it. */
  openFile(path: string, first: T): F;
  /** The clock segment ages are measured against (epoch ms). Default Date.now; tests inject their own. */
  nowMs?: () => number;
  /** Finishing segments allowed to close at once before `write` waits for the oldest. Default 2. */
  maxPendingCloses?: number;
  log?: Logger;
}

/**
 * A segment whose writer fails (ffmpeg killed or crashed) is given up (kept as `.partial`) and the output goes on
 * in a new one: a camera's encoder is a unit of failure too. This many new segments failing in a row, without a
 * write succeeding in between (no disk, no ffmpeg), fail the output.
 */
const MAX_RESTARTS_IN_A_ROW = 2;

interface OpenSegment<F> {
  file: F;
  path: string;
  /** Exclusive: the first item at or after this time opens the next segment. */
  endMs: number;
}

/**
 * One output written as consecutive time segments, each finalised and playable on its own when it closes.
 *
 * Segment ends are aligned to multiples of segmentSeconds since the epoch, the way NVRs cut recordings: segments of
 * several cameras line up and a time maps to a predictable file. A segment that directly continues the previous
 * one is named after its window's start (`…073500Z`); the first segment of a run, and the first after a gap in
 * the frames, is named after its first item instead, so its name says when its recording starts and a restarted
 * run never reuses the name of a segment an earlier run finished in the same window.
 *
 * Rollover is synchronous (so events keep their order) and never waits for the old segment: its close (an ffmpeg
 * writing its index) runs in the background, followed by retention. Every such task is owned here and awaited by
 * close()/abort(); a failure surfaces at close().
 */
export class SegmentedOutput<T, F extends SegmentFile<T>> {
  private readonly base: SegmentBase;
  private readonly nowMs: () => number;
  private readonly maxPendingCloses: number;
  private readonly pending = new Set<Promise<void>>();
  /** Segments still closing in the background: retention must not touch them. */
  private readonly closing = new Set<string>();
  private restarts = 0;
  /** The first background failure and how many there were, reported by close() (a count, so months of a full disk stay bounded). */
  private firstFailure: { what: string; err: unknown } | undefined;
  private failureCount = 0;
  private current: OpenSegment<F> | null = null;
  private retentionRun: Promise<void> = Promise.resolve();
  private ended = false;
  private finalised = 0;
  private deleted = 0;

  constructor(private readonly options: SegmentedOutputOptions<T, F>) {
    this.base = segmentBaseOf(options.path);
    this.nowMs = options.nowMs ?? Date.now;
    this.maxPendingCloses = options.maxPendingCloses ?? 2;
  }

  /** `out/cam.*.mp4`. */
  get pattern(): string {
    return segmentPatternOf(this.base);
  }

  /** The file `item` goes to, rolling over to a new segment when its time has passed the open one's end. */
  fileFor(item: T): F {
    if (this.ended) throw new Error(`${this.pattern} is closed`);
    const itemMs = this.options.timeMsOf(item);
    // An item without a usable time cannot place a first segment; the clock can (later ones join the open segment).
    const timeMs = Number.isFinite(itemMs) || this.current !== null ? itemMs : this.nowMs();
    const previous = this.current;
    // Times going backwards (or not numbers) stay in the open segment: a segment never reopens.
    if (previous !== null && !(timeMs >= previous.endMs)) return previous.file;
    const { segmentSeconds } = this.options;
    const continues = previous !== null && timeMs < previous.endMs + segmentSeconds * 1000;
    const startMs = continues ? previous.endMs : Math.floor(timeMs / 1000) * 1000;
    // The folder may have been removed while we ran (a cleanup job): a new segment brings it back.
    mkdirSync(this.base.dir, { recursive: true });
    const path = this.freePath(startMs);
    const file = this.options.openFile(path, item);
    this.current = { file, path, endMs: windowEndMs(startMs, segmentSeconds) };
    if (previous !== null) this.finishInBackground(previous);
    return file;
  }

  /**
   * Writes `item` to its segment; waits while too many finished segments are still closing. A segment whose writer
   * failed is kept as `.partial` and `item` goes to a new segment (see MAX_RESTARTS_IN_A_ROW).
   */
  async write(item: T): Promise<void> {
    for (;;) {
      try {
        await this.fileFor(item).write(item);
        this.restarts = 0;
        break;
      } catch (err) {
        if (this.restarts >= MAX_RESTARTS_IN_A_ROW || this.current === null) throw err;
        this.restarts++;
        this.giveUpCurrent(err);
      }
    }
    // A slow encoder must slow the pipeline down rather than pile up ffmpeg processes.
    while (this.pending.size > this.maxPendingCloses) await Promise.race(this.pending);
  }

  /** Finalises the open segment, waits for every close and retention pass; resolves with `out/cam.*.mp4 (N segments)`. */
  async close(): Promise<string> {
    this.ended = true;
    const last = this.current;
    this.current = null;
    if (last !== null) this.finishInBackground(last);
    await this.settle();
    const first = this.firstFailure;
    if (first !== undefined) {
      const message = first.err instanceof Error ? first.err.message : String(first.err);
      throw new VisionpipeError('VP_SINK_FAILED', `${first.what} (${this.failureCount} failure(s) in all): ${message}`, {
        hint: `Kept: ${this.describe()}; a segment that could not be finalised stays as .partial. Check disk space and permissions.`,
        cause: first.err,
      });
    }
    return this.describe();
  }

  /**
   * After a failure elsewhere: segments already closed stay finalised; the open one is finished where possible and
   * kept as `.partial`. Resolves with what was kept (null when nothing), never rejects.
   */
  async abort(): Promise<string | null> {
    this.ended = true;
    const last = this.current;
    this.current = null;
    const partial = last === null ? null : await last.file.abort().catch(() => null);
    await this.settle();
    const kept = [...(this.finalised > 0 ? [this.describe()] : []), ...(partial !== null ? [partial] : [])];
    return kept.length > 0 ? kept.join(', ') : null;
  }

  private describe(): string {
    const n = this.finalised;
    const deleted = this.deleted > 0 ? `; retention deleted ${this.deleted}` : '';
    return `${this.pattern} (${n} segment${n === 1 ? '' : 's'}${deleted})`;
  }

  /** The segment path for `startMs`, one second later while that name is taken (by an earlier run, finished or crashed). */
  private freePath(startMs: number): string {
    let ms = startMs;
    const taken = (path: string) => existsSync(path) || existsSync(partialPathOf(path));
    while (taken(segmentPathOf(this.base, ms))) ms += 1000;
    return segmentPathOf(this.base, ms);
  }

  private giveUpCurrent(err: unknown): void {
    const segment = this.current;
    if (segment === null) return;
    this.current = null;
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    this.options.log?.error({ segment: segment.path }, `segment writer failed (${message}); kept as .partial, recording goes on in a new segment`);
    this.track(segment.path, segment.file.abort().then(() => undefined, () => undefined));
  }

  /**
   * Owns a background task on a segment (`work` never rejects): awaited by close()/abort(), its segment kept from
   * retention until `work` is done; `then` (retention) follows as part of the same task.
   */
  private track(path: string, work: Promise<void>, then: () => Promise<void> = () => Promise.resolve()): void {
    this.closing.add(path);
    const task: Promise<void> = work
      .then(() => {
        this.closing.delete(path);
        return then();
      })
      .finally(() => this.pending.delete(task));
    this.pending.add(task);
  }

  private finishInBackground(segment: OpenSegment<F>): void {
    // Starting from a resolved promise: close() throwing at once becomes a rejection handled below.
    const closed = Promise.resolve()
      .then(() => segment.file.close())
      .then(
        () => {
          this.finalised++;
        },
        (err: unknown) => this.fail(`Segment ${segment.path} could not be finalised`, err),
      );
    // Retention runs once this segment is no longer `closing` (it may then delete it, if it is already too old).
    this.track(segment.path, closed, () => this.retain());
  }

  /** Retention passes run one at a time, so two never judge the same listing. */
  private retain(): Promise<void> {
    const run = this.retentionRun.then(async () => {
      const keep = new Set([...(this.current === null ? [] : [this.current.path]), ...this.closing]);
      const { retention, segmentSeconds } = this.options;
      try {
        const deleted = await applyRetention(this.base, retention, { nowMs: this.nowMs(), segmentSeconds, keep });
        this.deleted += deleted.length;
        if (deleted.length > 0) this.options.log?.info({ deleted }, `retention deleted ${deleted.length} segment(s) of ${this.pattern}`);
      } catch (err) {
        this.fail(`Retention could not delete old segments of ${this.pattern}`, err);
      }
    });
    this.retentionRun = run;
    return run;
  }

  private fail(what: string, err: unknown): void {
    this.firstFailure ??= { what, err };
    this.failureCount++;
    this.options.log?.error({ err }, what);
  }

  private async settle(): Promise<void> {
    // Tasks never reject (failures are collected), and none start once ended: this drains them all.
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
