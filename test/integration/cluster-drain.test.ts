import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { ClusterClient, fileJobsFor, type ClusterStatus } from '../../src/cluster/cluster-client.js';
import { parseQueueUrl } from '../../src/cluster/queue-target.js';
import { WorkerProcess } from '../../src/cluster/worker-process.js';
import { HAS_REDIS, RedisServer, SKIP_REDIS_REASON } from '../helpers/redis.js';
import { HAS_SHARED, VTEST } from '../helpers/shared.js';

if (!HAS_REDIS) console.warn(`[cluster-drain] ${SKIP_REDIS_REASON}`);

/**
 * SIGTERM with a file job longer than --drain-timeout-s: the job is stopped, its temporary outputs removed, and it
 * goes back to waiting (not failed, not stalled); the next worker runs it and writes its outputs once.
 */
describe.skipIf(!HAS_REDIS || !HAS_SHARED)('scale-out: a drain that times out hands the file job back', () => {
  let dir: string;
  let redis: RedisServer;
  let client: ClusterClient;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vp-cluster-drain-'));
    redis = await RedisServer.start({ dir: join(dir, 'redis') });
    client = await ClusterClient.connect(parseQueueUrl(redis.url));
  });

  afterAll(async () => {
    await Promise.allSettled(workers.map((w) => w.stop(30_000)));
    await client?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function waitFor(what: string, ok: (s: ClusterStatus) => boolean, deadlineMs = 60_000): Promise<ClusterStatus> {
    const until = Date.now() + deadlineMs;
    let last: ClusterStatus | null = null;
    while (Date.now() < until) {
      last = await client.status();
      if (ok(last)) return last;
      await sleep(200);
    }
    throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`);
  }

  const start = (id: string) => {
    const w = WorkerProcess.start({ id, queueUrl: redis.url, logFile: join(dir, `${id}.log`), stateDir: join(dir, id), args: ['--drain-timeout-s', '1'] });
    workers.push(w);
    return w;
  };

  it('stops the job after the drain timeout, removes its partial outputs, and the next worker completes it once', async () => {
    onTestFailed(() => {
      for (const w of workers) console.error(`----- ${w.id} -----\n${w.log().slice(-5000)}`);
    });
    const out = join(dir, 'out');
    // The whole clip (795 frames): far longer than the 1 s drain timeout.
    await client.submit(fileJobsFor([VTEST], { model: 'mlperf-tiny-resnet', outputDir: out, video: true, events: true }));
    const first = start('d1');
    await waitFor('the job running on d1', (s) => s.workers.some((w) => w.id === 'd1' && w.files.length === 1));
    await sleep(1000); // frames being written under the attempt names
    first.signal('SIGTERM');
    const exit = await first.exit;
    expect(exit.code).toBe(143);
    expect(first.log()).toContain('stopping them and handing them back');
    const back = await waitFor('the job waiting again', (s) => s.files.waiting === 1 && s.files.active === 0);
    expect(back.files.failed).toBe(0);
    expect(readdirSync(out)).toEqual([]); // no final output, no attempt file left
    start('d2');
    await waitFor('the job completed', (s) => s.files.completed === 1, 180_000);
    const [job] = await client.finishedFileJobs();
    expect(job).toMatchObject({ state: 'completed', attemptsStarted: 2, stalledCounter: 0, processedBy: 'd2' });
    expect(readdirSync(out).sort()).toEqual(['vtest.jsonl', 'vtest.mp4']);
    const predictions = readFileSync(join(out, 'vtest.jsonl'), 'utf8').trim().split('\n').filter((l) => l.includes('"type":"prediction"'));
    expect(predictions).toHaveLength(795);
  }, 300_000);
});
