import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { messageOf } from '../errors.js';
import { cameraJobId } from './cameras-file.js';
import { CameraJobSchema, DesiredCameraSchema, type CameraJob, type DesiredCamera, type WorkerHeartbeat } from './job-schemas.js';
import { clusterKeys } from './queue-target.js';
import { planReconcile, type CameraJobView, type ReconcilePlan } from './reconcile.js';

/** Options of every camera job: removed when done, so that a camera removed and added again gets a new job. */
export const CAMERA_JOB_OPTIONS = { removeOnComplete: true, removeOnFail: true, attempts: 1 } as const;

/** visionpipe's own state in Redis beside BullMQ's queues: desired cameras, worker heartbeats, hand-over count. */
export class ClusterStore {
  readonly keys: ReturnType<typeof clusterKeys>;

  constructor(
    readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = clusterKeys(prefix);
  }

  /** The desired cameras by id (entries that do not parse are skipped: a newer `apply` will replace them). */
  async desired(): Promise<Map<string, DesiredCamera>> {
    const raw = await this.redis.hgetall(this.keys.desired);
    const out = new Map<string, DesiredCamera>();
    for (const [id, json] of Object.entries(raw)) {
      const parsed = DesiredCameraSchema.safeParse(safeJson(json));
      if (parsed.success) out.set(id, parsed.data);
    }
    return out;
  }

  /** Replaces the whole desired set in one transaction. */
  async setDesired(cameras: readonly DesiredCamera[]): Promise<void> {
    const tx = this.redis.multi().del(this.keys.desired);
    if (cameras.length > 0) tx.hset(this.keys.desired, Object.fromEntries(cameras.map((c) => [c.id, JSON.stringify(c)])));
    await tx.exec();
  }

  async writeHeartbeat(beat: WorkerHeartbeat): Promise<void> {
    await this.redis.hset(this.keys.workers, beat.id, JSON.stringify(beat));
  }

  async removeWorker(id: string): Promise<void> {
    await this.redis.hdel(this.keys.workers, id);
  }

  async heartbeats(): Promise<WorkerHeartbeat[]> {
    const raw = await this.redis.hgetall(this.keys.workers);
    return Object.values(raw)
      .map((json) => safeJson(json) as WorkerHeartbeat | null)
      .filter((b): b is WorkerHeartbeat => b !== null && typeof b.id === 'string')
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Forgets workers not heard from for `maxAgeMs` (so the hash stays bounded as worker ids come and go). */
  async pruneWorkers(nowMs: number, maxAgeMs: number): Promise<string[]> {
    const gone = (await this.heartbeats()).filter((b) => nowMs - b.seenAtMs > maxAgeMs).map((b) => b.id);
    if (gone.length > 0) await this.redis.hdel(this.keys.workers, ...gone);
    return gone;
  }

  async countHandover(): Promise<void> {
    await this.redis.incr(this.keys.handovers);
  }

  async handovers(): Promise<number> {
    return Number((await this.redis.get(this.keys.handovers)) ?? 0);
  }

  /** True for the one caller that got the reconcile turn (for `ttlMs`). */
  async takeReconcileTurn(owner: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys.reconcileLock, owner, 'PX', ttlMs, 'NX')) === 'OK';
  }
}

/** The camera queue's jobs that are not finished, with their camera and hash. */
export async function cameraJobViews(queue: Queue): Promise<CameraJobView[]> {
  const states = ['waiting', 'active', 'delayed', 'prioritized', 'paused'] as const;
  const views: CameraJobView[] = [];
  for (const state of states) {
    for (const job of await queue.getJobs([state], 0, -1)) {
      const data = CameraJobSchema.safeParse(job.data);
      if (job.id === undefined) continue;
      views.push({ jobId: job.id, cameraId: data.success ? data.data.cameraId : '?', hash: data.success ? data.data.hash : '?', state });
    }
  }
  return views;
}

/**
 * Makes the camera queue match the desired set: adds the jobs of desired cameras that have none, removes waiting
 * jobs of cameras no longer desired. Running jobs of removed or changed cameras are stopped by their worker.
 */
export async function reconcileCameraJobs(store: ClusterStore, queue: Queue, options: { delayMs?: number } = {}): Promise<ReconcilePlan & { errors: string[] }> {
  const plan = planReconcile([...(await store.desired()).values()], await cameraJobViews(queue));
  const errors: string[] = [];
  for (const cam of plan.add) {
    const data: CameraJob = { cameraId: cam.id, hash: cam.hash };
    await queue.add(cam.id, data, { ...CAMERA_JOB_OPTIONS, jobId: cameraJobId(cam.id, cam.hash), ...(options.delayMs === undefined ? {} : { delay: options.delayMs }) });
  }
  for (const jobId of plan.remove) {
    // A job a worker took in the meantime cannot be removed (it is locked): its worker stops it instead.
    await queue.remove(jobId).catch((err: unknown) => errors.push(`${jobId}: ${messageOf(err)}`));
  }
  return { ...plan, errors };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}
