import { existsSync, statSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { VisionpipeError } from '../errors.js';
import { loadModelDescriptor } from '../models/load-descriptor.js';
import { prepareOutputDir } from '../sinks/output-path.js';
import { ClusterStore, cameraJobViews, reconcileCameraJobs } from './cluster-store.js';
import { type DesiredCamera, type FileJob, type FileJobResult, type WorkerHeartbeat } from './job-schemas.js';
import { CAMERAS_QUEUE, FILES_QUEUE, type QueueTarget } from './queue-target.js';
import { connectFailFast } from './redis-clients.js';

/** File jobs: retried once on another worker after a failure (a worker's death is BullMQ's stalled handling). */
export const FILE_JOB_OPTIONS = {
  attempts: 2,
  backoff: { type: 'fixed', delay: 1000 },
  // Bounded: finished jobs stay a week (status, tests), at most 10 000 of them.
  removeOnComplete: { age: 7 * 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
} as const;

/** A worker not heard from for this long is reported as gone (its heartbeat is every second). */
export const WORKER_GONE_AFTER_MS = 10_000;

/** A connection to the cluster for one command; close() it. */
export class ClusterClient implements AsyncDisposable {
  private constructor(
    readonly target: QueueTarget,
    readonly redis: Redis,
    readonly store: ClusterStore,
    readonly files: Queue,
    readonly cameras: Queue,
  ) {}

  /** VP_QUEUE_UNREACHABLE when Redis does not answer within a few seconds. */
  static async connect(target: QueueTarget, options: { reconnect: boolean } = { reconnect: false }): Promise<ClusterClient> {
    const redis = await connectFailFast(target, options);
    const connection = { ...target.connection, maxRetriesPerRequest: 1, retryStrategy: options.reconnect ? (n: number) => Math.min(100 * n, 2000) : () => null };
    const files = new Queue(FILES_QUEUE, { connection, prefix: target.prefix });
    const cameras = new Queue(CAMERAS_QUEUE, { connection, prefix: target.prefix });
    return new ClusterClient(target, redis, new ClusterStore(redis, target.prefix), files, cameras);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.files.close(), this.cameras.close()]);
    this.redis.disconnect();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Enqueues one file job per clip; returns the jobs. Every input is checked first (nothing is enqueued on error). */
  async submit(jobs: readonly FileJob[]): Promise<Job[]> {
    return this.files.addBulk(jobs.map((data) => ({ name: basename(data.clip), data, opts: FILE_JOB_OPTIONS })));
  }

  /** Replaces the desired cameras and brings the camera queue in line; returns what changed. */
  async apply(cameras: readonly DesiredCamera[]): Promise<ApplyResult> {
    const before = await this.store.desired();
    await this.store.setDesired(cameras);
    const plan = await reconcileCameraJobs(this.store, this.cameras);
    const after = new Map(cameras.map((c) => [c.id, c]));
    return {
      added: cameras.filter((c) => !before.has(c.id)).map((c) => c.id),
      changed: cameras.filter((c) => before.has(c.id) && before.get(c.id)?.hash !== c.hash).map((c) => c.id),
      removed: [...before.keys()].filter((id) => !after.has(id)),
      unchanged: cameras.filter((c) => before.get(c.id)?.hash === c.hash).map((c) => c.id),
      jobsAdded: plan.add.length,
      jobsRemoved: plan.remove.length,
    };
  }

  async status(nowMs = Date.now()): Promise<ClusterStatus> {
    const [desired, beats, views, counts, handovers] = await Promise.all([
      this.store.desired(),
      this.store.heartbeats(),
      cameraJobViews(this.cameras),
      this.files.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed', 'paused'),
      this.store.handovers(),
    ]);
    const workers = beats.map((b) => ({ ...b, ageMs: nowMs - b.seenAtMs, alive: nowMs - b.seenAtMs < WORKER_GONE_AFTER_MS }));
    const cameras: CameraStatus[] = [...desired.values()]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((d) => {
        const on = workers.find((w) => w.alive && w.cameras.some((c) => c.id === d.id && c.hash === d.hash));
        const running = on?.cameras.find((c) => c.id === d.id);
        const job = views.find((v) => v.cameraId === d.id && v.hash === d.hash);
        const error = workers.map((w) => (w as { errors?: Record<string, string> }).errors?.[d.id]).find((e) => e !== undefined);
        return {
          id: d.id,
          hash: d.hash,
          fps: d.fps,
          worker: on?.id ?? null,
          state: running?.state ?? (job === undefined ? 'no job' : job.state === 'active' ? 'active (no live worker reports it)' : job.state),
          predictions: running?.predictions ?? 0,
          ...(error === undefined ? {} : { lastError: error }),
        };
      });
    const oldest = await this.#oldestWaitingMs(nowMs);
    return {
      queue: this.target.display,
      prefix: this.target.prefix,
      workers,
      cameras,
      files: {
        waiting: (counts['waiting'] ?? 0) + (counts['prioritized'] ?? 0) + (counts['paused'] ?? 0),
        delayed: counts['delayed'] ?? 0,
        active: counts['active'] ?? 0,
        completed: counts['completed'] ?? 0,
        failed: counts['failed'] ?? 0,
        oldestWaitingAgeMs: oldest,
      },
      cameraHandovers: handovers,
    };
  }

  /** Finished file jobs (newest first, at most `limit`), with where and how they ran. */
  async finishedFileJobs(limit = 1000): Promise<FinishedFileJob[]> {
    const jobs = await this.files.getJobs(['completed', 'failed'], 0, limit - 1);
    return jobs.map((j) => ({
      id: j.id ?? '',
      clip: (j.data as FileJob).clip,
      state: j.finishedOn === undefined ? 'unknown' : j.failedReason === undefined || j.failedReason === '' ? 'completed' : 'failed',
      result: (j.returnvalue ?? null) as FileJobResult | null,
      attemptsStarted: j.attemptsStarted,
      attemptsMade: j.attemptsMade,
      stalledCounter: j.stalledCounter,
      processedBy: j.processedBy ?? null,
      processedOn: j.processedOn ?? null,
      finishedOn: j.finishedOn ?? null,
      timestamp: j.timestamp,
      failedReason: j.failedReason ?? null,
    }));
  }

  async #oldestWaitingMs(nowMs: number): Promise<number | null> {
    // Bounded: the oldest of the first 1000 waiting (enough to say how far behind the cluster is).
    const waiting = await this.files.getJobs(['waiting', 'prioritized'], 0, 999, true);
    const oldest = waiting.reduce((min, j) => Math.min(min, j.timestamp), Infinity);
    return Number.isFinite(oldest) ? nowMs - oldest : null;
  }
}

export interface ApplyResult {
  added: string[];
  changed: string[];
  removed: string[];
  unchanged: string[];
  jobsAdded: number;
  jobsRemoved: number;
}

export interface CameraStatus {
  id: string;
  hash: string;
  fps: number;
  /** The live worker running it, or null. */
  worker: string | null;
  /** The source state on its worker (connecting, live, …), or the job's state in the queue when no worker runs it. */
  state: string;
  predictions: number;
  lastError?: string;
}

export interface ClusterStatus {
  queue: string;
  prefix: string;
  workers: Array<WorkerHeartbeat & { ageMs: number; alive: boolean }>;
  cameras: CameraStatus[];
  files: { waiting: number; delayed: number; active: number; completed: number; failed: number; oldestWaitingAgeMs: number | null };
  cameraHandovers: number;
}

export interface FinishedFileJob {
  id: string;
  clip: string;
  state: string;
  result: FileJobResult | null;
  attemptsStarted: number;
  attemptsMade: number;
  stalledCounter: number;
  processedBy: string | null;
  processedOn: number | null;
  finishedOn: number | null;
  timestamp: number;
  failedReason: string | null;
}

/**
 * The file jobs for `visionpipe submit`: every clip must exist, the model must be known, the output folder writable,
 * and no two clips may write the same output name. All problems are reported at once, before anything is enqueued.
 */
export function fileJobsFor(
  clips: readonly string[],
  options: { model: string; engine?: string; outputDir: string; maxFrames?: number; video: boolean; events: boolean },
  nowMs = Date.now(),
): FileJob[] {
  if (clips.length === 0) throw new VisionpipeError('VP_CONFIG_INVALID', 'No clip to submit', { expected: 'one or more video files after `submit`' });
  if (!options.video && !options.events) {
    throw new VisionpipeError('VP_CONFIG_INVALID', 'Nothing to write: both --no-video and --no-events were given', { expected: 'at least one output' });
  }
  const missing = clips.filter((c) => !existsSync(c) || !statSync(c).isFile());
  if (missing.length > 0) {
    throw new VisionpipeError('VP_SOURCE_NOT_FOUND', `${missing.length} clip${missing.length > 1 ? 's do' : ' does'} not exist`, {
      value: missing.slice(0, 10),
      expected: 'video files on a path every worker can read (shared storage)',
    });
  }
  const stems = new Map<string, string>();
  for (const c of clips) {
    const stem = basename(c, extname(c));
    const other = stems.get(stem);
    if (other !== undefined) {
      throw new VisionpipeError('VP_CONFIG_INVALID', 'Two clips would write the same output name', {
        value: [other, c],
        expected: 'clips with different file names (outputs are named after the clip)',
      });
    }
    stems.set(stem, c);
  }
  loadModelDescriptor(options.model); // VP_MODEL_NOT_FOUND / VP_MODEL_INVALID here, not on every worker
  const engine = options.engine ?? 'auto';
  if (!['auto', 'onnx', 'tfjs', 'opencv'].includes(engine)) {
    throw new VisionpipeError('VP_CONFIG_INVALID', 'Unknown --engine', { value: engine, expected: 'auto, onnx, tfjs or opencv' });
  }
  const dir = prepareOutputDir(options.outputDir, 'output');
  return clips.map((c) => {
    const stem = basename(c, extname(c));
    return {
      clip: resolve(c),
      // A descriptor path is made absolute (workers run elsewhere); a name is looked up in each worker's models/.
      model: /\.ya?ml$/i.test(options.model) ? resolve(options.model) : options.model,
      engine: engine as FileJob['engine'],
      maxFrames: options.maxFrames ?? null,
      video: options.video ? join(dir, `${stem}.mp4`) : null,
      events: options.events ? join(dir, `${stem}.jsonl`) : null,
      submittedAtMs: nowMs,
    };
  });
}
