/**
 * BullMQ's failure detection, as visionpipe sets it. A worker renews the lock of every job it runs every
 * lockDuration / 2; a worker that dies stops renewing, its locks expire after at most lockDuration, and the next
 * stalled-job check of any live worker (every stalledInterval) moves its jobs back to waiting, where another
 * worker takes them at once. Detection time = lockDuration + stalledInterval at worst.
 */
export interface ClusterTimings {
  /** A job's lock lives this long without renewal (ms). */
  lockDurationMs: number;
  /** Every live worker checks for expired locks this often (ms). */
  stalledIntervalMs: number;
  /**
   * A file job whose worker died more than this many times fails instead of running again (a clip that crashes
   * every worker must not take the cluster down one worker at a time).
   */
  fileMaxStalledCount: number;
  /** Workers write their heartbeat (status, capacity) this often (ms). */
  heartbeatMs: number;
  /** A worker compares what it runs with the desired cameras, and repairs missing camera jobs, this often (ms). */
  reconcileMs: number;
}

/** The defaults: a dead worker's cameras are back on others within 20 s + the camera's reconnect. */
export const DEFAULT_TIMINGS: ClusterTimings = {
  lockDurationMs: 15_000,
  stalledIntervalMs: 5_000,
  fileMaxStalledCount: 2,
  heartbeatMs: 1_000,
  reconcileMs: 2_000,
};

/** Camera jobs are never failed for stalling: a camera is desired until `cluster apply` removes it. */
export const CAMERA_MAX_STALLED_COUNT = 1_000_000;

/** Worst case from a worker's death to its jobs waiting again (ms). */
export function detectionTimeMs(t: Pick<ClusterTimings, 'lockDurationMs' | 'stalledIntervalMs'>): number {
  return t.lockDurationMs + t.stalledIntervalMs;
}
