/**
 * When the inference worker will be free, predicted from the measured durations of its runs: what just-in-time
 * preprocessing for live sources waits on. With double buffering a live frame is read and preprocessed as soon as a
 * slot is free — right after the previous frame was sent — and then waits a whole inference in the queue, already
 * stale. Instead the reader waits until the worker is about to be free (minus the time preprocessing takes) and then
 * takes the source's newest frame. Files keep double buffering: they lose nothing by waiting in a queue.
 */
export class InferenceSchedule {
  private inferEmaMs: number | null = null;
  private prepEmaMs = 0;
  private queued = 0;
  /** When the worker last started from idle or answered: the runs still queued take their turns from here. */
  private anchorMs = 0;

  constructor(
    private readonly now: () => number = () => performance.now(),
    /** Weight of the newest measurement in the moving averages. */
    private readonly alpha = 0.2,
    /** Runs one inference call takes (batching): queued runs cost one inference per this many. */
    private readonly maxBatch = 1,
    /** Workers running calls side by side: while fewer runs than this are queued, one is idle. */
    private readonly workers = 1,
  ) {}

  /** A run was sent to the worker. */
  sent(): void {
    if (this.queued === 0) this.anchorMs = this.now();
    this.queued++;
  }

  /** A run failed: it leaves the queue, its time says nothing about inference. */
  failed(): void {
    this.queued = Math.max(0, this.queued - 1);
    this.anchorMs = this.now();
  }

  /** Runs answered, and inference calls they took (a batch of k counts 1/k per run). */
  private answered = 0;
  private calls = 0;

  /** Runs per inference call so far (1 without batching). */
  get meanBatchSize(): number {
    return this.calls === 0 ? 1 : this.answered / this.calls;
  }

  /** A run came back after `inferMs` in the worker (a batch's runs each report the batch's time and size). */
  done(inferMs: number, batchSize = 1): void {
    this.answered++;
    this.calls += 1 / Math.max(1, batchSize);
    this.queued = Math.max(0, this.queued - 1);
    this.inferEmaMs = this.inferEmaMs === null ? inferMs : this.inferEmaMs + this.alpha * (inferMs - this.inferEmaMs);
    // Re-anchored on what actually happened: the runs still queued take one average per batch from now.
    this.anchorMs = this.now();
  }

  private readonly wokeAtMs = new Map<string, number>();

  /** A just-in-time reader of `sourceId` ends its wait and reads now. */
  reading(sourceId: string): void {
    this.wokeAtMs.set(sourceId, this.now());
  }

  /**
   * A frame of `sourceId` filled its slot: the time since its reader woke (reading the pending frame, then
   * preprocessing) is what the next wait must leave. Frames no just-in-time reader took (files) say nothing.
   */
  prepared(sourceId: string): void {
    const woke = this.wokeAtMs.get(sourceId);
    if (woke === undefined) return;
    this.wokeAtMs.delete(sourceId);
    const ms = this.now() - woke;
    this.prepEmaMs = this.prepEmaMs === 0 ? ms : this.prepEmaMs + this.alpha * (ms - this.prepEmaMs);
  }

  /**
   * How long a live reader should wait before taking its frame, so that preprocessing ends about when the worker
   * frees: 0 while nothing is measured yet or the worker is (about to be) idle. A margin of a quarter of the
   * preprocessing time (at least 2 ms) keeps the worker from waiting on a slower-than-average preprocess.
   */
  delayMs(): number {
    if (this.inferEmaMs === null || this.queued < this.workers) return 0;
    const margin = Math.max(2, 0.25 * this.prepEmaMs);
    const busyUntilMs = this.anchorMs + Math.ceil((this.queued - this.workers + 1) / (this.maxBatch * this.workers)) * this.inferEmaMs;
    return Math.max(0, busyUntilMs - this.now() - this.prepEmaMs - margin);
  }
}
