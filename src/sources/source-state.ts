/** Lifecycle of a live source. */
/** `failed`: gave up after `reconnect.maxAttempts` (the other sources go on); `stopped`: closed. */
export type SourceState = 'connecting' | 'live' | 'stalled' | 'backoff' | 'failed' | 'stopped';

/** Published on the pipeline's event stream (and the events file) whenever a live source changes state. */
export interface SourceStateEvent {
  type: 'source-state';
  source: string;
  state: SourceState;
  /** Wall-clock time of the change (epoch ms). */
  atMs: number;
  /** Connection attempt number since the source was last live (0 while live). */
  attempt: number;
  /** Why: "stream ended", "no frame for 5000 ms", "connection refused" … */
  reason?: string;
  /** backoff: how long until the next attempt. */
  retryInMs?: number;
}

/**
 * Why a frame was not run. ring-full: a newer frame replaced it while the pipeline was busy; stale: older than
 * maxStalenessMs when its turn came; decode-error: the decoder failed on it; fps-cap: skipped by source.maxFps;
 * queue-full: backpressure `all` on a live source hit maxQueuedFrames; inference-error: the model failed on it.
 */
export type DropReason = 'ring-full' | 'stale' | 'decode-error' | 'fps-cap' | 'queue-full' | 'inference-error';
