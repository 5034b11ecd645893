import { hostname } from 'node:os';
import { DelayedError, Queue, UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { isVisionpipeError, messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { setEventStamp } from '../pipeline/event-stamp.js';
import { CameraRun, type CameraStopReason } from './camera-runner.js';
import { Capacity, type CapacitySpec } from './capacity.js';
import { cameraJobId } from './cameras-file.js';
import { ClusterStore, reconcileCameraJobs } from './cluster-store.js';
import { FileJobRun } from './file-job-runner.js';
import { CameraJobSchema, FileJobSchema, type FileJobResult, type WorkerHeartbeat } from './job-schemas.js';
import { CAMERAS_QUEUE, FILES_QUEUE, type QueueTarget } from './queue-target.js';
import { connectFailFast, workerConnection } from './redis-clients.js';
import { stillDesired } from './reconcile.js';
import { CAMERA_MAX_STALLED_COUNT, type ClusterTimings } from './timings.js';

export interface ClusterWorkerOptions {
  /** Unique per worker: in every event it writes, in status, on every job it takes (BullMQ's processedBy). */
  id: string;
  target: QueueTarget;
  capacity: CapacitySpec;
  /** File jobs run at once (BullMQ concurrency of the file queue). */
  fileJobs: number;
  timings: ClusterTimings;
  /** This worker's own files (outboxes of its cameras). */
  stateDir: string;
  /** SIGTERM: how long file jobs may take to finish before they are stopped and handed back (ms). */
  drainTimeoutMs: number;
  log: Logger;
}

/** A camera that does not fit here goes back to the queue for this long, so workers with room take it first. */
const HAND_BACK_DELAY_MS = 2_000;
/** A worker not heard from for this long is removed from the status (its id may never come back). */
const FORGET_WORKER_AFTER_MS = 3_600_000;
/** A camera whose job failed (its pipeline gave up or could not start) is put back after this, not in a loop. */
const REPAIR_DELAY_MS = 5_000;

/**
 * `visionpipe worker`: takes camera jobs (up to its capacity) and file jobs (up to `fileJobs` at once) from the
 * queues and runs each with the same pipeline as `visionpipe run`. Failure detection is BullMQ's: locks renewed
 * every lockDuration / 2, stalled jobs moved back to waiting by any live worker. See the README's "Scale-out".
 */
export class ClusterWorker {
  readonly capacity: Capacity;
  readonly cameras = new Map<string, CameraRun>();
  readonly files = new Map<string, FileJobRun>();
  filesDone = 0;
  filesFailed = 0;
  handoversTaken = 0;
  mode: 'running' | 'draining' | 'redis-lost' = 'running';
  readonly #startedAtMs = Date.now();
  #lastRedisOkMs = Date.now();
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #lastErrors = new Map<string, string>();
  #ticking = false;
  #closed: Promise<void> | null = null;

  private constructor(
    readonly options: ClusterWorkerOptions,
    readonly store: ClusterStore,
    private readonly redis: Redis,
    private readonly cameraQueue: Queue,
    private readonly filesWorker: Worker,
    private readonly camerasWorker: Worker,
  ) {
    this.capacity = new Capacity(options.capacity);
  }

  /** Connects (VP_QUEUE_UNREACHABLE when Redis does not answer) and starts taking jobs. */
  static async start(options: ClusterWorkerOptions): Promise<ClusterWorker> {
    const { target, timings, log, id } = options;
    setEventStamp({ worker: id });
    const redis = await connectFailFast(target, { reconnect: true });
    const connection = workerConnection(target);
    const common = { connection, prefix: target.prefix, name: id, autorun: false, lockDuration: timings.lockDurationMs, stalledInterval: timings.stalledIntervalMs };
    const capacity = new Capacity(options.capacity);
    let self: ClusterWorker | null = null;
    const filesWorker = new Worker(FILES_QUEUE, (job: Job, token?: string) => self!.#runFile(job, token), {
      ...common,
      concurrency: options.fileJobs,
      maxStalledCount: timings.fileMaxStalledCount,
    });
    const camerasWorker = new Worker(CAMERAS_QUEUE, (job: Job, token?: string) => self!.#runCamera(job, token), {
      ...common,
      concurrency: capacity.maxCameras(),
      maxStalledCount: CAMERA_MAX_STALLED_COUNT,
    });
    const cameraQueue = new Queue(CAMERAS_QUEUE, { connection, prefix: target.prefix });
    // Connection errors while Redis is away are expected (BullMQ reconnects): logged at debug; the heartbeat notices.
    const onError = (queue: string) => (err: Error) => log.debug({ queue, err: err.message }, 'queue connection error');
    filesWorker.on('error', onError(FILES_QUEUE));
    camerasWorker.on('error', onError(CAMERAS_QUEUE));
    cameraQueue.on('error', onError('camera queue'));
    self = new ClusterWorker(options, new ClusterStore(redis, target.prefix), redis, cameraQueue, filesWorker, camerasWorker);
    const worker = self;
    camerasWorker.on('lockRenewalFailed', (jobIds: string[]) => {
      for (const cam of worker.cameras.values()) if (jobIds.includes(cam.jobId)) worker.#stopCamera(cam, 'lock-lost');
    });
    const onStalled = (queue: string) => (jobId: string) => log.warn({ jobId, queue }, 'a job whose worker stopped renewing its lock goes back to waiting');
    filesWorker.on('stalled', onStalled(FILES_QUEUE));
    camerasWorker.on('stalled', onStalled(CAMERAS_QUEUE));
    await worker.#heartbeat();
    void filesWorker.run().catch((err: unknown) => log.error({ err: messageOf(err) }, 'file queue stopped'));
    void camerasWorker.run().catch((err: unknown) => log.error({ err: messageOf(err) }, 'camera queue stopped'));
    worker.#timers.push(setInterval(() => void worker.#heartbeat(), timings.heartbeatMs));
    worker.#timers.push(setInterval(() => void worker.#tick(), timings.reconcileMs));
    log.info(
      { worker: id, queue: target.display, capacity: options.capacity, fileJobs: options.fileJobs, lockDurationMs: timings.lockDurationMs, stalledIntervalMs: timings.stalledIntervalMs },
      'worker started',
    );
    return worker;
  }

  /**
   * SIGTERM: takes no new job, hands every camera back (its job goes back to waiting and another worker takes it
   * at once), lets the file jobs in progress finish (up to drainTimeoutMs; then they are stopped and handed back,
   * their temporary outputs removed), and leaves. Resolves once nothing runs and the queues are closed.
   */
  drain(): Promise<void> {
    if (this.#closed !== null) return this.#closed;
    this.mode = 'draining';
    const { log, drainTimeoutMs } = this.options;
    log.info({ cameras: this.cameras.size, files: this.files.size }, 'draining: handing back cameras, finishing file jobs');
    this.#closed = (async () => {
      const camerasClosed = this.camerasWorker.close();
      for (const cam of this.cameras.values()) this.#stopCamera(cam, 'drain');
      const filesClosed = this.filesWorker.close();
      const timer = setTimeout(() => {
        log.warn({ files: [...this.files.keys()] }, `file jobs not done after ${drainTimeoutMs} ms: stopping them and handing them back`);
        for (const f of this.files.values()) f.stop();
      }, drainTimeoutMs);
      try {
        await Promise.all([camerasClosed, filesClosed]);
      } finally {
        clearTimeout(timer);
      }
      await this.#shutdown(true);
      log.info({ filesDone: this.filesDone }, 'drained: every camera handed back, every file job finished or handed back');
    })();
    return this.#closed;
  }

  /** Closes connections without waiting for anything (after a failure). */
  async closeNow(): Promise<void> {
    for (const cam of this.cameras.values()) cam.stop('drain');
    for (const f of this.files.values()) f.stop();
    await Promise.allSettled([this.filesWorker.close(true), this.camerasWorker.close(true)]);
    await this.#shutdown(false);
  }

  async #shutdown(removeHeartbeat: boolean): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    if (removeHeartbeat) await this.store.removeWorker(this.options.id).catch(() => undefined);
    await this.cameraQueue.close().catch(() => undefined);
    this.redis.disconnect();
  }

  /** What this worker writes about itself every heartbeat. */
  snapshot(): WorkerHeartbeat {
    const { capacity } = this;
    return {
      id: this.options.id,
      pid: process.pid,
      host: hostname(),
      startedAtMs: this.#startedAtMs,
      seenAtMs: Date.now(),
      mode: this.mode,
      capacity: { unit: capacity.spec.unit, total: capacity.spec.total, used: capacity.used },
      cameras: [...this.cameras.values()].map((c) => ({ id: c.camera.id, hash: c.camera.hash, state: c.state, predictions: c.predictions })),
      files: [...this.files.values()].map((f) => ({ jobId: f.jobId, clip: f.job.clip })),
      filesDone: this.filesDone,
      ...(this.#lastErrors.size > 0 ? { errors: Object.fromEntries(this.#lastErrors) } : {}),
    };
  }

  async #heartbeat(): Promise<void> {
    try {
      await this.store.writeHeartbeat(this.snapshot());
      if (this.mode === 'redis-lost') this.options.log.info('Redis reachable again: taking work again');
      this.#lastRedisOkMs = Date.now();
      if (this.mode === 'redis-lost') this.mode = 'running';
    } catch (err) {
      const downMs = Date.now() - this.#lastRedisOkMs;
      // The rule: cameras keep running while their locks can still be valid (lockDuration after the last good
      // contact); past that, another worker may take them as soon as Redis is back, so they are stopped here.
      if (downMs > this.options.timings.lockDurationMs && this.mode === 'running') {
        this.mode = 'redis-lost';
        this.options.log.warn({ downMs, err: messageOf(err) }, 'Redis unreachable for longer than the lock duration: stopping cameras, taking no work until it is back');
        for (const cam of this.cameras.values()) this.#stopCamera(cam, 'redis-lost');
      }
    }
  }

  /** Stops cameras no longer desired (or changed), and puts back the jobs of desired cameras that have none. */
  async #tick(): Promise<void> {
    if (this.#ticking || this.mode !== 'running') return;
    this.#ticking = true;
    try {
      const desired = await this.store.desired();
      for (const cam of this.cameras.values()) {
        if (!stillDesired(cam.camera.id, cam.camera.hash, desired)) this.#stopCamera(cam, 'undesired');
      }
      if (await this.store.takeReconcileTurn(this.options.id, this.options.timings.reconcileMs)) {
        const plan = await reconcileCameraJobs(this.store, this.cameraQueue, { delayMs: REPAIR_DELAY_MS });
        if (plan.add.length > 0) this.options.log.info({ cameras: plan.add.map((c) => c.id) }, 'put back the jobs of desired cameras that had none');
        await this.store.pruneWorkers(Date.now(), FORGET_WORKER_AFTER_MS);
      }
    } catch (err) {
      this.options.log.debug({ err: messageOf(err) }, 'reconcile skipped (Redis unreachable?)');
    } finally {
      this.#ticking = false;
    }
  }

  #stopCamera(cam: CameraRun, reason: CameraStopReason): void {
    if (cam.stopReason !== null) return;
    this.options.log.info({ camera: cam.camera.id, reason }, 'stopping camera');
    cam.stop(reason);
  }

  async #runCamera(job: Job, token: string | undefined): Promise<unknown> {
    const { log, id } = this.options;
    const parsed = CameraJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`camera job ${job.id} has bad data: ${parsed.error.message}`);
    const { cameraId, hash } = parsed.data;
    const camera = (await this.store.desired()).get(cameraId);
    if (camera === undefined || camera.hash !== hash) return { stopped: 'no longer desired' };
    if (this.mode === 'draining') return handBack(job, token);
    // Keyed by job (camera + hash): a changed camera's new version may start here while its old one still stops.
    const jobId = job.id ?? cameraJobId(cameraId, hash);
    const key = `camera:${jobId}`;
    if (!this.capacity.tryReserve(key, this.capacity.cameraCost(camera.fps))) {
      await job.moveToDelayed(Date.now() + HAND_BACK_DELAY_MS, token);
      throw new DelayedError();
    }
    const run = new CameraRun(camera, jobId);
    this.cameras.set(jobId, run);
    try {
      // Not attemptsStarted > 1: a camera bounced for lack of capacity before it ran anywhere is no hand-over.
      const handover = parsed.data.runningOn !== undefined && parsed.data.runningOn !== id;
      await job.updateData({ ...parsed.data, runningOn: id });
      if (handover) {
        this.handoversTaken++;
        await this.store.countHandover().catch(() => undefined);
      }
      log.info({ camera: cameraId, hash, handover, from: parsed.data.runningOn, attempt: job.attemptsStarted }, 'camera started on this worker');
      await run.run({ workerId: id, stateDir: this.options.stateDir, log: log.child({ camera: cameraId }) });
      this.#lastErrors.delete(cameraId);
    } catch (err) {
      this.#lastErrors.set(cameraId, messageOf(err).split('\n')[0] ?? '');
      log.error({ camera: cameraId, err: messageOf(err) }, 'camera stopped with an error: its job fails and is put back after a delay');
      throw err;
    } finally {
      this.capacity.release(key);
      this.cameras.delete(jobId);
    }
    if (run.stopReason === 'undesired') return { stopped: 'removed or changed by cluster apply', worker: id };
    if (run.stopReason === null) throw new Error(`camera ${cameraId} ended by itself`);
    // drain, lock-lost, redis-lost: back to waiting (fails harmlessly when another worker already holds it).
    return handBack(job, token);
  }

  async #runFile(job: Job, token: string | undefined): Promise<FileJobResult> {
    const { log, id } = this.options;
    const parsed = FileJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`file job ${job.id} has bad data: ${parsed.error.message}`);
    if (this.mode === 'draining') return handBack(job, token);
    const jobId = job.id ?? 'unknown';
    const run = new FileJobRun(jobId, parsed.data, job.attemptsStarted);
    this.files.set(jobId, run);
    log.info({ jobId, clip: parsed.data.clip, attempt: job.attemptsStarted }, 'file job started');
    try {
      const result = await run.run({ workerId: id, log: log.child({ jobId }) });
      if (run.stopped) return handBack(job, token);
      this.filesDone++;
      log.info({ jobId, frames: result.frames, outputs: result.outputs }, 'file job done');
      return result;
    } catch (err) {
      this.filesFailed++;
      log.error({ jobId, err: messageOf(err) }, 'file job failed');
      // A bad input fails the same way everywhere: no retry. Anything else may be this machine's: retried.
      if (isVisionpipeError(err) && INPUT_ERRORS.has(err.code)) throw new UnrecoverableError(messageOf(err));
      throw err;
    } finally {
      this.files.delete(jobId);
    }
  }
}

const INPUT_ERRORS = new Set(['VP_CONFIG_INVALID', 'VP_SOURCE_NOT_FOUND', 'VP_SOURCE_UNREADABLE', 'VP_MODEL_NOT_FOUND', 'VP_MODEL_INVALID', 'VP_MODEL_SHAPE_MISMATCH']);

/** Back to waiting without counting as a failed attempt; another worker takes it at once. */
async function handBack(job: Job, token: string | undefined): Promise<never> {
  await job.moveToWait(token);
  throw new WaitingError();
}
