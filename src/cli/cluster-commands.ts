import { hostname, homedir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { loadCamerasFile } from '../cluster/cameras-file.js';
import { ClusterClient, fileJobsFor, type ClusterStatus } from '../cluster/cluster-client.js';
import { ClusterMetricsServer } from '../cluster/cluster-metrics.js';
import { ClusterWorker } from '../cluster/cluster-worker.js';
import type { CapacitySpec } from '../cluster/capacity.js';
import { parseQueueUrl, type QueueTarget } from '../cluster/queue-target.js';
import { DEFAULT_TIMINGS, detectionTimeMs } from '../cluster/timings.js';
import { VisionpipeError } from '../errors.js';
import { createLogger } from '../log.js';
import { exitCodeOf, quitAtOnce } from '../process/quit-at-once.js';
import { prepareOutputDir } from '../sinks/output-path.js';
import { reportError } from './report-error.js';

/** `--capacity-cameras` when neither capacity flag is given. */
const DEFAULT_CAPACITY_CAMERAS = 2;

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a whole number > 0, got "${value}"`);
  return n;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number > 0, got "${value}"`);
  return n;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`expected a port number 0..65535, got "${value}"`);
  return n;
}

/** --queue, else $VISIONPIPE_QUEUE; one clear error when neither is given. */
function queueTarget(flag: string | undefined): QueueTarget {
  const url = flag ?? process.env['VISIONPIPE_QUEUE'];
  if (url === undefined || url === '') {
    throw new VisionpipeError('VP_CONFIG_INVALID', 'No queue given', { expected: '--queue redis://host:6379 (or VISIONPIPE_QUEUE in the environment)' });
  }
  return parseQueueUrl(url);
}

interface WorkerFlags {
  queue?: string;
  id?: string;
  capacityCameras?: number;
  capacityFps?: number;
  fileJobs: number;
  stateDir?: string;
  metricsPort?: number;
  drainTimeoutS: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  logLevel: string;
  jsonLogs?: boolean;
  verbose?: boolean;
}

/** The commands of the scale-out: `worker`, `submit`, `cluster apply`, `cluster status`. */
export function registerClusterCommands(program: Command): void {
  program
    .command('worker')
    .description('take camera and file jobs from a Redis queue (BullMQ) and run them; SIGTERM drains it (see README "Scale-out")')
    .option('--queue <url>', 'redis://host:6379[/db][?prefix=name] (default: $VISIONPIPE_QUEUE)')
    .option('--id <name>', 'this worker\'s id: in every event it writes, and in status (default: <host>-<pid>)')
    .option('--capacity-cameras <n>', `run at most n cameras (default ${DEFAULT_CAPACITY_CAMERAS})`, positiveInt)
    .option('--capacity-fps <fps>', 'instead: cameras up to this total fps (each camera costs its fps from cameras.yaml), as measured on this machine', positiveNumber)
    .option('--file-jobs <n>', 'file jobs run at once, beside the cameras', positiveInt, 1)
    .option('--state-dir <dir>', 'this worker\'s own files (its cameras\' delivery outboxes) (default: ~/.visionpipe/workers/<id>)')
    .option('--metrics-port <port>', 'serve Prometheus metrics (worker and cluster) at http://127.0.0.1:<port>/metrics (0 = any free port)', port)
    .option('--drain-timeout-s <s>', 'SIGTERM: file jobs still running after this are stopped and handed back', positiveInt, 300)
    .option('--lock-duration-ms <ms>', 'BullMQ lockDuration: a dead worker\'s jobs are taken over after at most this + --stalled-interval-ms', positiveInt, DEFAULT_TIMINGS.lockDurationMs)
    .option('--stalled-interval-ms <ms>', 'BullMQ stalledInterval: how often workers look for jobs whose worker died', positiveInt, DEFAULT_TIMINGS.stalledIntervalMs)
    .option('--log-level <level>', 'silent | error | warn | info | debug', 'info')
    .option('--json-logs', 'log JSON lines to stderr even on a terminal')
    .option('-v, --verbose', 'stack traces on errors')
    .action(async (flags: WorkerFlags) => {
      process.exitCode = await workerCommand(flags);
    });

  program
    .command('submit')
    .description('enqueue one file job per clip; any worker runs it, outputs appear once, complete, in --output')
    .argument('<clips...>', 'video files on storage every worker can read')
    .option('--queue <url>', 'redis://host:6379 (default: $VISIONPIPE_QUEUE)')
    .option('-m, --model <name|path>', 'model descriptor name or .yaml path', 'centernet')
    .option('--engine <engine>', 'auto | onnx | tfjs | opencv')
    .requiredOption('-o, --output <dir>', 'folder every worker can write: <clip name>.mp4 and <clip name>.jsonl go here')
    .option('--max-frames <n>', 'only the first n frames of each clip', positiveInt)
    .option('--no-video', 'no annotated MP4')
    .option('--no-events', 'no events file')
    .option('--json', 'print the job ids as JSON')
    .option('-v, --verbose', 'stack traces on errors')
    .action(async (clips: string[], flags: { queue?: string; model: string; engine?: string; output: string; maxFrames?: number; video: boolean; events: boolean; json?: boolean; verbose?: boolean }) => {
      try {
        const target = queueTarget(flags.queue);
        const jobs = fileJobsFor(clips, { model: flags.model, engine: flags.engine, outputDir: flags.output, maxFrames: flags.maxFrames, video: flags.video, events: flags.events });
        const client = await ClusterClient.connect(target);
        try {
          const added = await client.submit(jobs);
          const ids = added.map((j) => j.id ?? '');
          process.stdout.write(flags.json === true ? `${JSON.stringify({ jobs: ids })}\n` : `${ids.length} file job${ids.length === 1 ? '' : 's'} queued on ${target.display}: ${ids.join(', ')}\n`);
        } finally {
          await client.close();
        }
      } catch (err) {
        process.exitCode = reportError(err, flags.verbose === true);
      }
    });

  const cluster = program.command('cluster').description('the desired cameras, and the state of the workers');
  cluster
    .command('apply')
    .description('make cameras.yaml the desired cameras: added ones start, changed ones restart, removed ones stop, without restarting workers')
    .argument('<cameras.yaml>')
    .option('--queue <url>', 'redis://host:6379 (default: $VISIONPIPE_QUEUE)')
    .option('-v, --verbose', 'stack traces on errors')
    .action(async (file: string, flags: { queue?: string; verbose?: boolean }) => {
      try {
        const target = queueTarget(flags.queue);
        const cameras = loadCamerasFile(file);
        const client = await ClusterClient.connect(target);
        try {
          const r = await client.apply(cameras);
          const list = (ids: string[]) => (ids.length === 0 ? '-' : ids.join(', '));
          process.stdout.write(
            `${cameras.length} desired camera${cameras.length === 1 ? '' : 's'} on ${target.display}\n` +
              `  added: ${list(r.added)}\n  changed: ${list(r.changed)}\n  removed: ${list(r.removed)}\n  unchanged: ${list(r.unchanged)}\n` +
              `workers pick up the change within ${DEFAULT_TIMINGS.reconcileMs / 1000} s (removed and changed cameras stop; new jobs start on workers with room)\n`,
          );
        } finally {
          await client.close();
        }
      } catch (err) {
        process.exitCode = reportError(err, flags.verbose === true);
      }
    });

  cluster
    .command('status')
    .description('workers, what each runs, each camera\'s state, the file backlog and its oldest job')
    .option('--queue <url>', 'redis://host:6379 (default: $VISIONPIPE_QUEUE)')
    .option('--json', 'print the status as JSON')
    .option('-v, --verbose', 'stack traces on errors')
    .action(async (flags: { queue?: string; json?: boolean; verbose?: boolean }) => {
      try {
        const client = await ClusterClient.connect(queueTarget(flags.queue));
        try {
          const status = await client.status();
          process.stdout.write(flags.json === true ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
        } finally {
          await client.close();
        }
      } catch (err) {
        process.exitCode = reportError(err, flags.verbose === true);
      }
    });
}

/** `cluster status` as text. */
export function formatStatus(s: ClusterStatus): string {
  const lines = [`cluster ${s.queue} (prefix ${s.prefix})`, ''];
  lines.push(`workers: ${s.workers.filter((w) => w.alive).length} alive${s.workers.some((w) => !w.alive) ? `, ${s.workers.filter((w) => !w.alive).length} gone` : ''}`);
  for (const w of s.workers) {
    const cams = w.cameras.map((c) => `${c.id} (${c.state})`).join(', ') || '-';
    const files = w.files.map((f) => f.jobId).join(', ') || '-';
    const seen = w.alive ? `${w.mode}, seen ${(w.ageMs / 1000).toFixed(1)} s ago` : `GONE, last seen ${(w.ageMs / 1000).toFixed(0)} s ago`;
    lines.push(`  ${w.id} on ${w.host} (pid ${w.pid}): ${seen}; capacity ${w.capacity.used}/${w.capacity.total} ${w.capacity.unit}; cameras: ${cams}; file jobs: ${files}; files done: ${w.filesDone}`);
  }
  lines.push('', `cameras: ${s.cameras.length} desired, ${s.cameras.filter((c) => c.worker !== null).length} running; hand-overs so far: ${s.cameraHandovers}`);
  for (const c of s.cameras) {
    lines.push(`  ${c.id} (${c.fps} fps): ${c.worker === null ? `not running: ${c.state}` : `on ${c.worker}, ${c.state}, ${c.predictions} predictions`}${c.lastError === undefined ? '' : ` — last error: ${c.lastError}`}`);
  }
  const f = s.files;
  const oldest = f.oldestWaitingAgeMs === null ? '' : `; oldest waiting ${(f.oldestWaitingAgeMs / 1000).toFixed(1)} s`;
  lines.push('', `file jobs: ${f.waiting} waiting, ${f.delayed} delayed, ${f.active} running, ${f.completed} completed, ${f.failed} failed${oldest}`, '');
  return lines.join('\n');
}

/** What systemd, Docker, Kubernetes or a terminal send to stop a worker. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** `visionpipe worker`; returns the exit code (128 + signal after a clean drain). */
async function workerCommand(flags: WorkerFlags): Promise<number> {
  const verbose = flags.verbose === true;
  let worker: ClusterWorker | null = null;
  let metrics: ClusterMetricsServer | null = null;
  let metricsClient: ClusterClient | null = null;
  let received: (typeof STOP_SIGNALS)[number] | null = null;
  let wake: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  const onSignal = (signal: (typeof STOP_SIGNALS)[number]) => {
    if (received !== null) {
      process.stderr.write(`visionpipe worker: ${signal} again: quitting at once (running jobs are taken over by other workers after the lock expires)\n`);
      quitAtOnce(received);
    }
    received = signal;
    wake();
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  try {
    const target = queueTarget(flags.queue);
    if (flags.capacityCameras !== undefined && flags.capacityFps !== undefined) {
      throw new VisionpipeError('VP_CONFIG_INVALID', 'Both --capacity-cameras and --capacity-fps were given', {
        value: { capacityCameras: flags.capacityCameras, capacityFps: flags.capacityFps },
        expected: 'one of them: a number of cameras, or the fps this machine sustains',
      });
    }
    const id = flags.id ?? `${hostname()}-${process.pid}`;
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) {
      throw new VisionpipeError('VP_CONFIG_INVALID', 'Invalid --id', { value: id, expected: '1-64 letters, digits, _ . -' });
    }
    if (flags.stalledIntervalMs >= flags.lockDurationMs) {
      throw new VisionpipeError('VP_CONFIG_INVALID', '--stalled-interval-ms must be shorter than --lock-duration-ms', {
        value: { lockDurationMs: flags.lockDurationMs, stalledIntervalMs: flags.stalledIntervalMs },
        expected: 'e.g. --lock-duration-ms 15000 --stalled-interval-ms 5000',
      });
    }
    if (flags.lockDurationMs < 2000) {
      throw new VisionpipeError('VP_CONFIG_INVALID', '--lock-duration-ms is too short', { value: flags.lockDurationMs, expected: 'at least 2000 (locks are renewed every half of it; a busy machine must keep up)' });
    }
    const capacity: CapacitySpec = flags.capacityFps !== undefined ? { unit: 'fps', total: flags.capacityFps } : { unit: 'cameras', total: flags.capacityCameras ?? DEFAULT_CAPACITY_CAMERAS };
    const stateDir = prepareOutputDir(flags.stateDir ?? join(homedir(), '.visionpipe', 'workers', id), 'worker state (--state-dir)');
    const log = createLogger(verbose ? 'debug' : flags.logLevel, flags.jsonLogs === true ? { json: true } : {});
    const timings = { ...DEFAULT_TIMINGS, lockDurationMs: flags.lockDurationMs, stalledIntervalMs: flags.stalledIntervalMs };
    log.info({ detectionTimeMs: detectionTimeMs(timings) }, 'a dead worker\'s jobs are taken over within this (plus the camera\'s reconnect)');
    if (received === null) {
      worker = await ClusterWorker.start({ id, target, capacity, fileJobs: flags.fileJobs, timings, stateDir, drainTimeoutMs: flags.drainTimeoutS * 1000, log });
      if (flags.metricsPort !== undefined) {
        metricsClient = await ClusterClient.connect(target, { reconnect: true });
        metrics = await ClusterMetricsServer.start('127.0.0.1', flags.metricsPort, worker, metricsClient);
        log.info({ url: metrics.url }, 'Prometheus metrics served');
      }
      await stopped;
      log.warn(`${String(received)}: draining (${String(received)} again to quit at once)`);
      await worker.drain();
    }
    return received === null ? 0 : exitCodeOf(received);
  } catch (err) {
    await worker?.closeNow().catch(() => undefined);
    return reportError(err, verbose);
  } finally {
    await metrics?.close().catch(() => undefined);
    await metricsClient?.close().catch(() => undefined);
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  }
}
