import { cameraJobId } from './cameras-file.js';
import type { DesiredCamera } from './job-schemas.js';

/** A camera job as the queue holds it. */
export interface CameraJobView {
  jobId: string;
  cameraId: string;
  hash: string;
  /** BullMQ's state: waiting, active, delayed, prioritized, paused, completed, failed … */
  state: string;
}

/** What to change in the camera queue so that it holds exactly one job per desired camera version. */
export interface ReconcilePlan {
  /** Desired cameras without a job: add one (job id = camera id + hash, so adding twice is a no-op). */
  add: DesiredCamera[];
  /** Jobs no longer desired that no worker runs: remove them. (Running ones are stopped by their worker.) */
  remove: string[];
}

/** States in which a job still counts as the camera's job (finished ones are removed on completion anyway). */
const LIVE_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'paused', 'waiting-children']);

/**
 * Pure: compares the desired cameras with the queue's camera jobs. `cluster apply` runs it once; every worker
 * runs it periodically (one at a time) to put back the job of a camera whose job failed.
 */
export function planReconcile(desired: readonly DesiredCamera[], jobs: readonly CameraJobView[]): ReconcilePlan {
  const wanted = new Map(desired.map((d) => [cameraJobId(d.id, d.hash), d]));
  const present = new Set(jobs.filter((j) => LIVE_STATES.has(j.state)).map((j) => j.jobId));
  const add = [...wanted.entries()].filter(([jobId]) => !present.has(jobId)).map(([, d]) => d);
  const remove = jobs.filter((j) => j.state !== 'active' && LIVE_STATES.has(j.state) && !wanted.has(j.jobId)).map((j) => j.jobId);
  return { add, remove };
}

/** Whether a worker running `cameraId` at `hash` should keep it: it is still desired, unchanged. */
export function stillDesired(cameraId: string, hash: string, desired: ReadonlyMap<string, { hash: string }>): boolean {
  return desired.get(cameraId)?.hash === hash;
}
