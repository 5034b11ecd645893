import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnCli } from '../helpers/cli.js';
import { HAS_MOSQUITTO, Mosquitto, SKIP_MOSQUITTO_REASON } from '../helpers/mosquitto.js';
import { HAS_SHARED, SKIP_SHARED_REASON, VTEST } from '../helpers/shared.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-mqtt-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// People on the sample clip, followed: object events from the first frames on.
const config = join(dir, 'tracked.yaml');
writeFileSync(config, 'source:\n  uri: x.mp4\n  track: { classes: [person] }\n');

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 25));
}

/** A subscriber whose session outlives broker restarts (clean: false, QoS 1). */
async function subscriber(url: string, clientId: string) {
  const got: { topic: string; body: string }[] = [];
  const client = mqtt.connect(url, { clientId, clean: false, reconnectPeriod: 200 });
  client.on('message', (topic, body) => got.push({ topic, body: body.toString() }));
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  await client.subscribeAsync('vp/#', { qos: 1 });
  const ids = () => got.filter((m) => m.topic !== 'vp/status').map((m) => (JSON.parse(m.body) as { id: string }).id);
  return { got, client, ids };
}

/** The ids of the object events in an outbox folder, in log order. */
function outboxIds(outbox: string): string[] {
  return readdirSync(outbox)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .flatMap((f) => readFileSync(join(outbox, f), 'utf8').split('\n').filter((l) => l.endsWith('}')))
    .map((l) => (JSON.parse(l) as { event: { id?: string } }).event.id)
    .filter((id): id is string => id !== undefined);
}

const skip = !HAS_MOSQUITTO || !HAS_SHARED;
const reason = !HAS_MOSQUITTO ? SKIP_MOSQUITTO_REASON : SKIP_SHARED_REASON;

describe.skipIf(skip)(`visionpipe run --mqtt with a real mosquitto${skip ? ` (skipped: ${reason})` : ''}`, () => {
  it('publishes the object events of a run, in order, the same ones as the events file', async () => {
    const broker = await Mosquitto.start(join(dir, 'b1'));
    const sub = await subscriber(broker.url, 'cli-sub-1');
    const events = join(dir, 'e1.jsonl');
    const outbox = join(dir, 'outbox1');
    const cfg = join(dir, 'c1.yaml');
    writeFileSync(cfg, `${readFileSync(config, 'utf8')}delivery:\n  mqtt: { url: "${broker.url}", prefix: vp }\n  outbox: { dir: "${outbox}" }\n`);
    try {
      const run = spawnCli(['run', VTEST, '-c', cfg, '--max-frames', '40', '-e', events, '--no-frame-events', '-q']);
      const done = await run.exit;
      expect(done.code, done.stderr).toBe(0);
      const fileIds = readFileSync(events, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id);
      expect(fileIds.length).toBeGreaterThan(5);
      await until(() => sub.ids().length >= fileIds.length);
      expect(sub.ids()).toEqual(fileIds);
      expect(sub.got.find((m) => m.topic === 'vp/vtest/object.start')).toBeDefined();
      expect(done.stdout).toContain('all delivered');
    } finally {
      await sub.client.endAsync();
      await broker.stop();
    }
  }, 300_000);

  it('kill -9 during a broker outage: the next start delivers the backlog, in order; the last will says offline', async () => {
    const broker = await Mosquitto.start(join(dir, 'b2'));
    const sub = await subscriber(broker.url, 'cli-sub-2');
    const outbox = join(dir, 'outbox2');
    const cfg = join(dir, 'c2.yaml');
    writeFileSync(cfg, `${readFileSync(config, 'utf8')}delivery:\n  mqtt: { url: "${broker.url}", prefix: vp }\n  outbox: { dir: "${outbox}", fsync: always }\n`);
    try {
      // Connected: the status goes online; killed, the broker publishes the last will.
      const first = spawnCli(['run', VTEST, '-c', cfg, '-q']);
      await until(() => sub.got.some((m) => m.topic === 'vp/status' && m.body === 'online'));
      first.child.kill('SIGKILL');
      await first.exit;
      await until(() => sub.got.some((m) => m.topic === 'vp/status' && m.body === 'offline'));
      // Broker away; a run appends events it cannot deliver, and is killed.
      await broker.stop();
      const killed = spawnCli(['run', VTEST, '-c', cfg, '-q']);
      await until(() => existsSync(outbox) && outboxIds(outbox).length >= sub.ids().length + 10);
      killed.child.kill('SIGKILL');
      await killed.exit;
      const written = outboxIds(outbox);
      // Broker back; the next start (one frame) sends what the killed run left.
      await broker.resume();
      const next = spawnCli(['run', VTEST, '-c', cfg, '--max-frames', '1', '-q']);
      const done = await next.exit;
      expect(done.code, done.stderr).toBe(0);
      await until(() => written.every((id) => sub.ids().includes(id)));
      const firsts = [...new Set(sub.ids())];
      expect(firsts.slice(0, written.length)).toEqual(written);
    } finally {
      await sub.client.endAsync();
      await broker.stop();
    }
  }, 300_000);
});
