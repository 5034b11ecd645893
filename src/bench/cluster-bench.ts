import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { desiredCameras } from '../cluster/cameras-file.js';
import { ClusterClient, fileJobsFor, type ClusterStatus } from '../cluster/cluster-client.js';
import { parseQueueUrl } from '../cluster/queue-target.js';
import { RedisServer } from '../cluster/redis-server.js';
import { DEFAULT_TIMINGS, detectionTimeMs } from '../cluster/timings.js';
import { WorkerProcess } from '../cluster/worker-process.js';
import { RtspServer, freePort, makeFrames } from './rtsp-server.js';

export interface ClusterBenchOptions {
  clip: string;
  model: string;
  jobs: number;
  framesPerJob: number;
  workerCounts: readonly number[];
}

export interface DrainRow {
  workers: number;
  /** First job enqueued → last job finished. */
  wallS: number;
  jobsPerS: number;
  /** Per job, on its worker: createPipeline (open clip, load model) and run() (frames + finalise outputs). */
  setupMsMean: number;
  runMsMean: number;
  /** BullMQ's processedOn → finishedOn minus setup + run: taking the job, attempt names, rename, completing it. */
  queueOverheadMsMean: number;
}

export interface HandoverRow {
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** kill -9 → the camera's job runs on the other worker. */
  takenS: number;
  /** kill -9 → that worker reports the camera live (connected, frames flowing). */
  liveS: number;
}

export interface ClusterBenchResult {
  drain: DrainRow[];
  handover: HandoverRow[];
}

/**
 * 1 vs 2 vs 3 worker processes draining the same backlog of short file jobs from one Redis (the speed-up is bounded
 * by the machine's cores: each job's pipeline already uses both here), and the time from `kill -9` of the worker
 * running a camera to that camera live on another worker, with the default BullMQ timings and short ones.
 */
export async function benchCluster(options: ClusterBenchOptions): Promise<ClusterBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'vp-cluster-bench-'));
  const redis = await RedisServer.start({ dir: join(dir, 'redis') });
  const workers: WorkerProcess[] = [];
  try {
    mkdirSync(join(dir, 'clips'));
    const clips = Array.from({ length: options.jobs }, (_, i) => {
      const clip = join(dir, 'clips', `clip${i + 1}.avi`);
      symlinkSync(options.clip, clip);
      return clip;
    });
    const drain: DrainRow[] = [];
    for (const n of options.workerCounts) {
      const url = `${redis.url}?prefix=drain${n}`;
      const client = await ClusterClient.connect(parseQueueUrl(url));
      try {
        const round = Array.from({ length: n }, (_, i) =>
          WorkerProcess.start({ id: `d${n}-${i + 1}`, queueUrl: url, logFile: join(dir, `drain${n}-${i + 1}.log`), stateDir: join(dir, 'state'), args: ['--file-jobs', '1'] }),
        );
        workers.push(...round);
        await until(client, 120_000, (s) => s.workers.filter((w) => w.alive).length === n);
        await client.submit(fileJobsFor(clips, { model: options.model, outputDir: join(dir, `out${n}`), maxFrames: options.framesPerJob, video: true, events: true }));
        await until(client, 600_000, (s) => s.files.completed + s.files.failed === options.jobs);
        const jobs = await client.finishedFileJobs();
        const failed = jobs.filter((j) => j.state !== 'completed');
        if (failed.length > 0) throw new Error(`${failed.length} file jobs failed: ${failed[0]?.failedReason ?? ''}`);
        const first = Math.min(...jobs.map((j) => j.timestamp));
        const last = Math.max(...jobs.map((j) => j.finishedOn ?? 0));
        const mean = (f: (j: (typeof jobs)[number]) => number) => jobs.reduce((s, j) => s + f(j), 0) / jobs.length;
        const setup = mean((j) => j.result?.setupMs ?? 0);
        const run = mean((j) => j.result?.runMs ?? 0);
        const onWorker = mean((j) => (j.finishedOn ?? 0) - (j.processedOn ?? 0));
        const wallS = (last - first) / 1000;
        drain.push({ workers: n, wallS, jobsPerS: options.jobs / wallS, setupMsMean: setup, runMsMean: run, queueOverheadMsMean: onWorker - setup - run });
        await Promise.all(round.map((w) => w.stop()));
      } finally {
        await client.close();
      }
    }
    const handover: HandoverRow[] = [];
    const frames = makeFrames(join(dir, 'frames'), 25, options.clip);
    const camera = await RtspServer.start({ port: await freePort(), framesDir: frames, fps: 5 });
    try {
      const settings = [
        { lockDurationMs: DEFAULT_TIMINGS.lockDurationMs, stalledIntervalMs: DEFAULT_TIMINGS.stalledIntervalMs },
        { lockDurationMs: 6000, stalledIntervalMs: 2000 },
      ];
      for (const [i, t] of settings.entries()) {
        const url = `${redis.url}?prefix=handover${i}`;
        const client = await ClusterClient.connect(parseQueueUrl(url));
        try {
          const args = ['--capacity-cameras', '1', '--lock-duration-ms', String(t.lockDurationMs), '--stalled-interval-ms', String(t.stalledIntervalMs)];
          const pair = ['a', 'b'].map((s) => WorkerProcess.start({ id: `h${i}${s}`, queueUrl: url, logFile: join(dir, `handover${i}${s}.log`), stateDir: join(dir, 'state'), args }));
          workers.push(...pair);
          await client.apply(desiredCameras({ defaults: { model: options.model }, cameras: [{ id: 'cam', uri: camera.url, fps: 2 }] }));
          const live = await until(client, 120_000, (s) => s.cameras[0]?.state === 'live' && s.workers.filter((w) => w.alive).length === 2);
          const victim = pair.find((w) => w.id === live.cameras[0]?.worker);
          if (victim === undefined) throw new Error('no worker runs the camera');
          const killedAt = Date.now();
          victim.signal('SIGKILL');
          await victim.exit;
          const other = (s: ClusterStatus) => s.cameras[0]?.worker !== null && s.cameras[0]?.worker !== victim.id;
          await until(client, 120_000, other, 100);
          const takenS = (Date.now() - killedAt) / 1000;
          await until(client, 120_000, (s) => other(s) && s.cameras[0]?.state === 'live', 100);
          handover.push({ ...t, takenS, liveS: (Date.now() - killedAt) / 1000 });
          await Promise.all(pair.map((w) => w.stop()));
        } finally {
          await client.close();
        }
      }
    } finally {
      await camera.kill();
    }
    return { drain, handover };
  } finally {
    await Promise.allSettled(workers.map((w) => w.stop(30_000)));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function until(client: ClusterClient, deadlineMs: number, ok: (s: ClusterStatus) => boolean, everyMs = 250): Promise<ClusterStatus> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    const s = await client.status();
    if (ok(s)) return s;
    await sleep(everyMs);
  }
  throw new Error(`cluster bench: nothing happened within ${deadlineMs} ms`);
}

export function formatClusterBench(r: ClusterBenchResult, options: Pick<ClusterBenchOptions, 'jobs' | 'framesPerJob' | 'model'>): string {
  const one = r.drain.find((d) => d.workers === 1);
  const lines = [
    `### cluster: ${options.jobs} file jobs (${options.framesPerJob} frames each, ${options.model}, MP4 + events) drained by 1 / 2 / 3 worker processes on one Redis`,
    '',
    '| workers | wall s | jobs/s | speed-up vs 1 | setup ms/job (open + load model) | run ms/job | queue overhead ms/job |',
    '|---|---|---|---|---|---|---|',
    ...r.drain.map(
      (d) =>
        `| ${d.workers} | ${d.wallS.toFixed(1)} | ${d.jobsPerS.toFixed(2)} | ${one === undefined ? '-' : `${(d.jobsPerS / one.jobsPerS).toFixed(2)}x`} | ${d.setupMsMean.toFixed(0)} | ${d.runMsMean.toFixed(0)} | ${d.queueOverheadMsMean.toFixed(1)} |`,
    ),
    '',
    '### cluster: camera hand-over after kill -9 of its worker (2 workers, 1 camera)',
    '',
    '| lockDuration ms | stalledInterval ms | detection bound s | kill → taken by the other worker s | kill → live again s |',
    '|---|---|---|---|---|',
    ...r.handover.map((h) => `| ${h.lockDurationMs} | ${h.stalledIntervalMs} | ${(detectionTimeMs(h) / 1000).toFixed(0)} | ${h.takenS.toFixed(1)} | ${h.liveS.toFixed(1)} |`),
    '',
  ];
  return lines.join('\n');
}
