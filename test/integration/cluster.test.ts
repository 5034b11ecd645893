import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { HAS_RTSP_SERVER, RtspServer, SKIP_RTSP_REASON, freePort, makeFrames } from '../../src/bench/rtsp-server.js';
import { ClusterClient, type ClusterStatus } from '../../src/cluster/cluster-client.js';
import { parseQueueUrl } from '../../src/cluster/queue-target.js';
import { WorkerProcess } from '../../src/cluster/worker-process.js';
import { ffprobeFrameCount, runCli } from '../helpers/cli.js';
import { HAS_MOSQUITTO, Mosquitto, SKIP_MOSQUITTO_REASON } from '../helpers/mosquitto.js';
import { HAS_REDIS, RedisServer, SKIP_REDIS_REASON } from '../helpers/redis.js';
import { HAS_SHARED, SKIP_SHARED_REASON, VTEST } from '../helpers/shared.js';

/**
 * The scale-out with real parts: Debian's redis-server (AOF persistence on, for the restart case), three (then a
 * fourth) `visionpipe worker` CLI processes, each in its own process group and signalled like a supervisor does,
 * three RTSP cameras from the project's RTSP server, and short file jobs on mlperf-tiny-resnet. Every wait polls
 * with a deadline; nothing asserts speed.
 */

const FRAMES_PER_JOB = 4;
/** BullMQ settings for the test workers: detection ≤ 6 + 2 s (the defaults are 15 + 5 s). */
const WORKER_ARGS = ['--capacity-cameras', '2', '--file-jobs', '1', '--lock-duration-ms', '6000', '--stalled-interval-ms', '2000'];

const ready = HAS_REDIS && HAS_RTSP_SERVER && HAS_SHARED;
if (!HAS_REDIS) console.warn(`[cluster] ${SKIP_REDIS_REASON}`);
if (!HAS_RTSP_SERVER) console.warn(`[cluster] ${SKIP_RTSP_REASON}`);
if (!HAS_SHARED) console.warn(`[cluster] ${SKIP_SHARED_REASON}`);
if (!HAS_MOSQUITTO) console.warn(`[cluster] ${SKIP_MOSQUITTO_REASON} (the cameras' events are then not delivered over MQTT)`);

let dir: string;
let out: string;
let redis: RedisServer;
let client: ClusterClient;
const cams: RtspServer[] = [];
const workers = new Map<string, WorkerProcess>();
let clipCount = 0;
/** The cameras' events delivered over MQTT (when mosquitto is installed), as a subscriber received them. */
let broker: Mosquitto | null = null;
let subscriber: mqtt.MqttClient | null = null;
const delivered: Array<{ topic: string; event: { worker?: string } }> = [];

function startWorker(id: string, extra: string[] = []): WorkerProcess {
  const w = WorkerProcess.start({ id, queueUrl: redis.url, logFile: join(dir, `${id}.log`), stateDir: join(dir, 'state', id), args: [...WORKER_ARGS, ...extra] });
  workers.set(id, w);
  return w;
}

/** n new clips (symlinks to vtest with their own names, so each job has its own outputs). */
function newClips(n: number): string[] {
  const clips: string[] = [];
  for (let i = 0; i < n; i++) {
    const clip = join(dir, 'clips', `clip${String(++clipCount).padStart(2, '0')}.avi`);
    symlinkSync(VTEST, clip);
    clips.push(clip);
  }
  return clips;
}

function submit(clips: string[]): void {
  const r = runCli(['submit', ...clips, '--queue', redis.url, '-m', 'mlperf-tiny-resnet', '-o', out, '--max-frames', String(FRAMES_PER_JOB), '--json']);
  expect(r.code, r.stderr).toBe(0);
  expect((JSON.parse(r.stdout) as { jobs: string[] }).jobs).toHaveLength(clips.length);
}

function applyCameras(list: Array<{ id: string; server: RtspServer }>): void {
  const file = join(dir, `cameras-${Date.now()}.yaml`);
  const lines = ['defaults:', '  model: mlperf-tiny-resnet', ...(broker === null ? [] : [`  delivery: { mqtt: { url: '${broker.url}', prefix: vp } }`]), 'cameras:'];
  for (const c of list) lines.push(`  - id: ${c.id}`, `    uri: ${c.server.url}`, '    fps: 2');
  writeFileSync(file, `${lines.join('\n')}\n`);
  const r = runCli(['cluster', 'apply', file, '--queue', redis.url]);
  expect(r.code, r.stderr).toBe(0);
}

/** Polls the cluster status until `ok` holds; fails with the last status after `deadlineMs`. */
async function waitFor(what: string, deadlineMs: number, ok: (s: ClusterStatus) => boolean): Promise<ClusterStatus> {
  const until = Date.now() + deadlineMs;
  let last: ClusterStatus | null = null;
  while (Date.now() < until) {
    try {
      last = await client.status();
      if (ok(last)) return last;
    } catch {
      // Redis restarting: try again
    }
    await sleep(250);
  }
  throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}; last status: ${JSON.stringify(last, null, 1)}`);
}

async function pollValue<T>(what: string, deadlineMs: number, get: () => T | undefined): Promise<T> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    const v = get();
    if (v !== undefined) return v;
    await sleep(200);
  }
  throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
}

const alive = (s: ClusterStatus) => s.workers.filter((w) => w.alive);
const allCamerasLive = (ids: string[]) => (s: ClusterStatus) =>
  ids.every((id) => {
    const c = s.cameras.find((x) => x.id === id);
    return c !== undefined && c.worker !== null && c.state === 'live' && alive(s).some((w) => w.id === c.worker);
  }) && s.cameras.length === ids.length;

/** Every submitted job completed once: one complete MP4 and one complete events file per clip, nothing else. */
function checkOutputs(total: number): void {
  const names = readdirSync(out).sort();
  const expected = Array.from({ length: total }, (_, i) => `clip${String(i + 1).padStart(2, '0')}`).flatMap((s) => [`${s}.jsonl`, `${s}.mp4`]);
  expect(names).toEqual(expected.sort());
  for (const name of names.filter((n) => n.endsWith('.jsonl'))) {
    const lines = readFileSync(join(out, name), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; worker?: string });
    const predictions = lines.filter((l) => l.type === 'prediction');
    expect(predictions, name).toHaveLength(FRAMES_PER_JOB);
    // Each file was written by one worker, named in every event.
    expect(new Set(lines.map((l) => l.worker)).size, name).toBe(1);
    expect(workers.has(lines[0]?.worker ?? ''), name).toBe(true);
  }
  // Complete, playable MP4s with every frame (a half-written file would fail to probe or count short).
  for (const name of names.filter((n) => n.endsWith('.mp4'))) expect(ffprobeFrameCount(join(out, name)), name).toBe(FRAMES_PER_JOB);
}

function printLogsOnFailure(): void {
  onTestFailed(() => {
    for (const w of workers.values()) console.error(`----- ${w.id} (${w.logFile}) -----\n${w.log().slice(-6000)}`);
  });
}

describe.skipIf(!ready)('scale-out: workers on Redis (real redis-server, worker processes, RTSP cameras)', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vp-cluster-'));
    out = join(dir, 'out');
    mkdirSync(join(dir, 'clips'), { recursive: true });
    redis = await RedisServer.start({ dir: join(dir, 'redis'), persistent: true });
    client = await ClusterClient.connect(parseQueueUrl(redis.url), { reconnect: true });
    if (HAS_MOSQUITTO) {
      broker = await Mosquitto.start(join(dir, 'mosquitto'));
      const sub = mqtt.connect(broker.url, { reconnectPeriod: 200 });
      subscriber = sub;
      // vp/status is the publisher's online / offline (not an event).
      sub.on('message', (topic, body) => {
        if (topic !== 'vp/status') delivered.push({ topic, event: JSON.parse(body.toString()) as { worker?: string } });
      });
      await new Promise<void>((resolve) => sub.once('connect', () => resolve()));
      await sub.subscribeAsync('vp/#', { qos: 1 });
    }
    const frames = makeFrames(join(dir, 'frames'), 25);
    for (let i = 0; i < 3; i++) cams.push(await RtspServer.start({ port: await freePort(), framesDir: frames, fps: 5 }));
    applyCameras(cams.map((server, i) => ({ id: `cam${i + 1}`, server })));
    for (const id of ['w1', 'w2', 'w3']) startWorker(id);
  });

  afterAll(async () => {
    await Promise.allSettled([...workers.values()].map((w) => w.stop(30_000)));
    await client?.close();
    await subscriber?.endAsync();
    await broker?.stop();
    await Promise.allSettled(cams.map((c) => c.kill()));
    await redis?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('runs every desired camera on some worker', async () => {
    printLogsOnFailure();
    const s = await waitFor('3 workers and 3 live cameras', 90_000, (st) => alive(st).length === 3 && allCamerasLive(['cam1', 'cam2', 'cam3'])(st));
    // Capacity 2 cameras per worker: nobody holds more.
    for (const w of alive(s)) expect(w.capacity.used).toBeLessThanOrEqual(2);
    const status = runCli(['cluster', 'status', '--queue', redis.url]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/cam1 \(2 fps\): on w\d, live/);
    if (broker !== null) {
      // Every event a worker delivered names it: here each camera's state changes (connecting, live).
      await pollValue('live events of the 3 cameras over MQTT', 30_000, () => (delivered.filter((d) => d.topic.endsWith('/state')).length >= 3 ? true : undefined));
      for (const d of delivered) expect(d.event.worker, d.topic).toMatch(/^w[123]$/);
    }
  });

  it('kill -9 of a worker: its cameras come back on the others, every file job completes once with a complete output', async () => {
    printLogsOnFailure();
    submit(newClips(20));
    // The victim: a worker running a camera and a file job at the same moment.
    const before = await waitFor('a worker running a camera and a file job', 60_000, (st) => alive(st).some((w) => w.cameras.length > 0 && w.files.length > 0));
    const victim = alive(before).find((w) => w.cameras.length > 0 && w.files.length > 0)!;
    workers.get(victim.id)!.signal('SIGKILL');
    const killed = await workers.get(victim.id)!.exit;
    expect(killed.signal).toBe('SIGKILL');
    // Its cameras are live elsewhere within detection (≤ 8 s) + reconnect; generous bound for a loaded 2-core VM.
    const after = await waitFor('the victim\'s cameras live on other workers', 90_000, (st) => allCamerasLive(['cam1', 'cam2', 'cam3'])(st) && st.cameras.every((c) => c.worker !== victim.id));
    expect(after.cameraHandovers).toBeGreaterThanOrEqual(victim.cameras.length);
    await waitFor('20 completed file jobs', 120_000, (st) => st.files.completed === 20 && st.files.active === 0 && st.files.waiting === 0);
    const jobs = await client.finishedFileJobs();
    expect(jobs.filter((j) => j.state === 'failed')).toEqual([]);
    expect(jobs).toHaveLength(20);
    // The job the victim was running went back to the queue (BullMQ's stalled check) and completed on another worker.
    for (const f of victim.files) {
      const job = jobs.find((j) => j.id === f.jobId)!;
      if (job.result?.worker === victim.id) continue; // it finished just before the kill
      expect(job.stalledCounter + job.attemptsStarted).toBeGreaterThan(1);
    }
    checkOutputs(20);
  }, 300_000);

  it('SIGTERM drains a worker: its file job finishes, its cameras are handed back, no job is retried', async () => {
    printLogsOnFailure();
    const w4 = startWorker('w4', ['--metrics-port', '0']); // the supervisor's replacement for the killed one
    await waitFor('w4 up', 60_000, (st) => alive(st).some((w) => w.id === 'w4'));
    // Its Prometheus endpoint: capacity used on this worker, and the cluster's backlog and hand-overs.
    const url = await pollValue('the metrics URL in w4\'s log', 30_000, () => /"url":"(http:[^"]+\/metrics)"/.exec(w4.log())?.[1]);
    const metrics = await (await fetch(url)).text();
    expect(metrics).toMatch(/visionpipe_worker_capacity_used\{worker="w4"\} \d/);
    expect(metrics).toMatch(/visionpipe_cluster_backlog_jobs \d/);
    expect(metrics).toMatch(/visionpipe_cluster_camera_handovers [1-9]/);
    const first = clipCount + 1;
    submit(newClips(6));
    const busy = await waitFor('a worker with a camera running a new file job', 60_000, (st) =>
      alive(st).some((w) => w.id !== 'w4' && w.cameras.length > 0 && w.files.some((f) => Number(f.jobId) >= first)),
    );
    const target = alive(busy).find((w) => w.id !== 'w4' && w.cameras.length > 0 && w.files.some((f) => Number(f.jobId) >= first))!;
    const proc = workers.get(target.id)!;
    proc.signal('SIGTERM');
    const exit = await Promise.race([proc.exit, sleep(90_000).then(() => null)]);
    expect(exit, 'the worker did not exit within 90 s of SIGTERM').not.toBeNull();
    expect(exit?.code).toBe(143);
    expect(proc.log()).toContain('drained');
    await waitFor('26 completed file jobs', 120_000, (st) => st.files.completed === 26 && st.files.active === 0 && st.files.waiting === 0);
    const jobs = await client.finishedFileJobs();
    for (const job of jobs.filter((j) => Number(j.id) >= first)) {
      expect({ id: job.id, attemptsStarted: job.attemptsStarted, stalledCounter: job.stalledCounter, state: job.state }).toEqual({ id: job.id, attemptsStarted: 1, stalledCounter: 0, state: 'completed' });
    }
    // The job it was running finished there (drained, not retried).
    for (const f of target.files) expect(jobs.find((j) => j.id === f.jobId)?.result?.worker).toBe(target.id);
    await waitFor('every camera live on the remaining workers', 90_000, (st) => allCamerasLive(['cam1', 'cam2', 'cam3'])(st) && st.cameras.every((c) => c.worker !== target.id));
    checkOutputs(26);
  }, 300_000);

  it('a Redis restart: workers recover, no file job is lost or duplicated, cameras keep running', async () => {
    printLogsOnFailure();
    const first = clipCount + 1;
    submit(newClips(6));
    const running = await waitFor('a new file job running', 60_000, (st) => st.workers.some((w) => w.files.some((f) => Number(f.jobId) >= first)));
    await redis.stop();
    await sleep(1000);
    await redis.resume();
    await waitFor('32 completed file jobs after the restart', 120_000, (st) => st.files.completed === 32 && st.files.active === 0 && st.files.waiting === 0 && st.files.delayed === 0);
    const jobs = await client.finishedFileJobs();
    expect(jobs).toHaveLength(32);
    expect(jobs.filter((j) => j.state !== 'completed')).toEqual([]);
    checkOutputs(32);
    const after = await waitFor('both workers alive and every camera live again', 90_000, (st) => alive(st).length === 2 && allCamerasLive(['cam1', 'cam2', 'cam3'])(st));
    // A restart shorter than the lock: the cameras kept running where they were (no hand-over).
    expect(after.cameraHandovers).toBe(running.cameraHandovers);
  }, 300_000);

  it('Redis away for longer than the lock: workers stop their cameras (the stated rule), then recover them', async () => {
    printLogsOnFailure();
    await redis.stop();
    const running = [...workers.values()].filter((w) => w.running);
    await pollValue('every worker stopping its cameras', 60_000, () => (running.every((w) => w.log().includes('Redis unreachable for longer than the lock duration')) ? true : undefined));
    await redis.resume();
    const resumedAtMs = Date.now();
    // Heartbeats written after the restart only (the ones from before it are still in Redis, and still say live).
    // Right after the outage a camera can briefly run on two workers (its old worker restarted it before the stalled
    // check handed it to another; the old one stops it when its lock renewal fails): the guarantee is convergence.
    const runsOnce = (st: ClusterStatus) => {
      const ids = alive(st).flatMap((w) => w.cameras.map((c) => c.id));
      return new Set(ids).size === ids.length && alive(st).every((w) => w.cameras.every((c) => c.state === 'live'));
    };
    const s = await waitFor('every camera live again on one worker, workers running', 90_000, (st) =>
      alive(st).length === running.length && alive(st).every((w) => w.mode === 'running' && w.seenAtMs > resumedAtMs + 1000) && allCamerasLive(['cam1', 'cam2', 'cam3'])(st) && runsOnce(st),
    );
    // Each camera was started again after the outage (its predictions count restarted with its new pipeline).
    for (const w of alive(s)) for (const c of w.cameras) expect(c.state).toBe('live');
    for (const w of running) expect(w.log()).toMatch(/"reason":"redis-lost"/);
  }, 200_000);

  it('cluster apply adding and removing a camera is picked up without restarting workers', async () => {
    printLogsOnFailure();
    // cam2 removed, cam4 added (the second server's stream under another id).
    applyCameras([
      { id: 'cam1', server: cams[0]! },
      { id: 'cam3', server: cams[2]! },
      { id: 'cam4', server: cams[1]! },
    ]);
    const s = await waitFor('cam4 live and cam2 gone', 60_000, (st) => allCamerasLive(['cam1', 'cam3', 'cam4'])(st) && alive(st).every((w) => w.cameras.every((c) => c.id !== 'cam2')));
    expect(s.cameras.map((c) => c.id)).toEqual(['cam1', 'cam3', 'cam4']);
    // The workers were not restarted.
    expect([...workers.values()].filter((w) => w.running).map((w) => w.id).sort()).toEqual(alive(s).map((w) => w.id).sort());
  });
});
