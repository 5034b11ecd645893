/** Lifecycle of a live source. */
export type SourceState = 'connecting' | 'live' | 'stalled' | 'backoff' | 'stopped';

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

/** Why a frame was not run. */
export type DropReason = 'ring-full' | 'stale' | 'decode-error';
