import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { MqttPublisher, type DeliveredEvent } from '../../src/delivery/mqtt-publisher.js';
import { Outbox } from '../../src/delivery/outbox.js';
import { silentLogger } from '../../src/log.js';
import { HAS_MOSQUITTO, Mosquitto, SKIP_MOSQUITTO_REASON } from '../helpers/mosquitto.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-mqtt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const event = (i: number): DeliveredEvent => ({ schemaVersion: 1, id: `run-${i}`, type: 'line.cross', source: 'rtsp://u:***@cam/1', trackId: i });

/** Waits until `check` holds (polling; each test bounds its own wait by the suite timeout). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 20));
}

/** A subscriber with a persistent session (clean: false, QoS 1): the broker queues for it while it is away. */
async function subscriber(url: string, clientId: string) {
  const got: { topic: string; body: string; raw: Buffer; retain: boolean }[] = [];
  const client = mqtt.connect(url, { clientId, clean: false, reconnectPeriod: 200 });
  client.on('message', (topic, body, packet) => got.push({ topic, body: body.toString(), raw: body, retain: packet.retain }));
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  await client.subscribeAsync('vp/#', { qos: 1 });
  return { got, client };
}

/**
 * A real broker, an outbox and a publisher over them, with a subscriber (connected before anything is published)
 * when asked; `stop` releases them in order.
 */
async function delivery(name: string, options: { subscriber?: string; fsync?: 'always' | 'never'; publisher?: { snapshots?: boolean; clips?: boolean } } = {}) {
  const broker = await Mosquitto.start(join(dir, `b-${name}`));
  const sub = options.subscriber === undefined ? null : await subscriber(broker.url, options.subscriber);
  const outbox = new Outbox<DeliveredEvent>({ dir: join(dir, `o-${name}`), fsync: options.fsync ?? 'never', maxBytes: null, maxAgeMs: null });
  const publisher = new MqttPublisher({ url: broker.url, prefix: 'vp', outbox, log: silentLogger, ...options.publisher });
  const stop = async () => {
    await publisher.close();
    await sub?.client.endAsync();
    outbox.close();
    await broker.stop();
  };
  /** What the subscriber received (empty without one). */
  const got = sub?.got ?? [];
  return { broker, got, outbox, publisher, stop };
}

describe.skipIf(!HAS_MOSQUITTO)(`MQTT delivery from the outbox to a real mosquitto${HAS_MOSQUITTO ? '' : ` (skipped: ${SKIP_MOSQUITTO_REASON})`}`, () => {
  it('every event in order under <prefix>/<source>/<type>, state retained, status online', async () => {
    const { broker, got, outbox, publisher, stop } = await delivery('order', { subscriber: 'sub-1' });
    try {
      outbox.append({ type: 'source-state', source: 'rtsp://u:***@cam/1', state: 'live', atMs: 1 });
      for (let i = 1; i <= 50; i++) outbox.append(event(i));
      publisher.notify();
      await until(() => got.filter((m) => m.topic.endsWith('/line.cross')).length === 50);
      const crossings = got.filter((m) => m.topic === 'vp/rtsp_u_cam_1/line.cross');
      expect(crossings.map((m) => (JSON.parse(m.body) as { id: string }).id)).toEqual(Array.from({ length: 50 }, (_, i) => `run-${i + 1}`));
      expect(outbox.depth('mqtt')).toBe(0);
      // A late subscriber gets the retained state and status at once.
      const late: { topic: string; body: string; retain: boolean }[] = [];
      const client = mqtt.connect(broker.url);
      client.on('message', (topic, body, packet) => late.push({ topic, body: body.toString(), retain: packet.retain }));
      await client.subscribeAsync(['vp/status', 'vp/+/state']);
      await until(() => late.length >= 2);
      expect(late.find((m) => m.topic === 'vp/status')).toEqual({ topic: 'vp/status', body: 'online', retain: true });
      expect(late.find((m) => m.topic === 'vp/rtsp_u_cam_1/state')).toMatchObject({ retain: true, body: expect.stringContaining('"state":"live"') });
      await client.endAsync();
    } finally {
      await stop();
    }
  }, 60_000);

  it('snapshots: the JPEG an event names goes to <prefix>/<source>/snapshot, retained, as raw bytes', async () => {
    const jpeg = join(dir, 'snap.jpg');
    writeFileSync(jpeg, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
    const { broker, outbox, publisher, stop } = await delivery('snapshots', { publisher: { snapshots: true } });
    try {
      outbox.append({ ...event(1), type: 'object.start', snapshot: jpeg });
      outbox.append(event(2)); // no snapshot
      publisher.notify();
      await until(() => outbox.depth('mqtt') === 0);
      // A subscriber arriving later gets the retained snapshot.
      const got: Buffer[] = [];
      const client = mqtt.connect(broker.url);
      client.on('message', (_topic, body) => got.push(body));
      await client.subscribeAsync('vp/rtsp_u_cam_1/snapshot');
      await until(() => got.length === 1);
      expect([...(got[0] ?? [])]).toEqual([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);
      await client.endAsync();
    } finally {
      await stop();
    }
  }, 60_000);

  it('clips: the MP4 a clip.ready names goes to <prefix>/<source>/clip after the event, as raw bytes', async () => {
    const mp4 = join(dir, 'clip.mp4');
    const bytes = Buffer.from([0, 0, 0, 0x18, 0x66, 0x74, 0x79, 0x70, 9, 8, 7]);
    writeFileSync(mp4, bytes);
    const { got, outbox, publisher, stop } = await delivery('clips', { subscriber: 'sub-5', publisher: { clips: true } });
    try {
      outbox.append({ ...event(1), clip: mp4 }); // the event announcing it: no bytes yet
      outbox.append({ ...event(2), type: 'clip.ready', clip: mp4, forEventId: 'run-1' });
      outbox.append({ ...event(4), type: 'clip.ready', clip: mp4, forEventId: 'run-9' }); // a second event sharing the clip: bytes not sent again
      outbox.append({ ...event(3), type: 'clip.ready', clip: join(dir, 'deleted-since.mp4'), forEventId: 'run-0' });
      publisher.notify();
      await until(() => outbox.depth('mqtt') === 0 && got.some((m) => m.topic === 'vp/rtsp_u_cam_1/clip'));
      const topics = got.filter((m) => m.topic !== 'vp/status').map((m) => m.topic);
      expect(topics).toEqual(['vp/rtsp_u_cam_1/line.cross', 'vp/rtsp_u_cam_1/clip.ready', 'vp/rtsp_u_cam_1/clip', 'vp/rtsp_u_cam_1/clip.ready', 'vp/rtsp_u_cam_1/clip.ready']);
      const clip = got.find((m) => m.topic === 'vp/rtsp_u_cam_1/clip');
      expect(clip?.retain).toBe(false);
      expect([...(clip?.raw ?? [])]).toEqual([...bytes]);
    } finally {
      await stop();
    }
  }, 60_000);

  it('a broker that holds the connection but answers nothing (frozen) cannot hold close() beyond its budget', async () => {
    const broker = await Mosquitto.start(join(dir, 'b4'));
    const outbox = new Outbox<DeliveredEvent>({ dir: join(dir, 'o4'), fsync: 'never', maxBytes: null, maxAgeMs: null });
    const publisher = new MqttPublisher({ url: broker.url, prefix: 'vp', outbox, log: silentLogger });
    try {
      await until(() => outbox.depth('mqtt') === 0 && publisher.delivered === 0);
      outbox.append(event(1));
      publisher.notify();
      await until(() => publisher.delivered === 1);
      broker.freeze();
      outbox.append(event(2));
      publisher.notify();
      // Without a bound this never resolves (mqtt.js waits for the PUBACK for ever): the test's timeout fails it.
      await publisher.close(500);
      expect(outbox.depth('mqtt')).toBe(1); // still on disk for the next start
    } finally {
      broker.thaw();
      outbox.close();
      await broker.stop();
    }
  }, 30_000);

  it('broker stopped mid-run and restarted: after de-duplication by id every event arrives once, in order', async () => {
    const { broker, got, outbox, publisher, stop } = await delivery('restart', { subscriber: 'sub-2', fsync: 'always' });
    try {
      for (let i = 1; i <= 20; i++) outbox.append(event(i));
      publisher.notify();
      await until(() => outbox.depth('mqtt') === 0);
      await broker.stop();
      // The broker is away: events wait on disk, not in mqtt.js's memory.
      for (let i = 21; i <= 60; i++) {
        outbox.append(event(i));
        publisher.notify();
      }
      expect(outbox.depth('mqtt')).toBe(40);
      await broker.resume();
      await until(() => outbox.depth('mqtt') === 0);
      const ids = () => got.filter((m) => m.topic.endsWith('/line.cross')).map((m) => (JSON.parse(m.body) as { id: string }).id);
      // The subscriber's session survived the restart: the broker delivers what was published while it was away.
      await until(() => new Set(ids()).size === 60);
      // At least once: duplicates are possible (a PUBACK lost with the broker); first occurrences are in order.
      expect([...new Set(ids())]).toEqual(Array.from({ length: 60 }, (_, i) => `run-${i + 1}`));
    } finally {
      await stop();
    }
  }, 60_000);
});
