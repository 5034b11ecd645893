import { readFile, stat } from 'node:fs/promises';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from '../log.js';
import { sourceFileName } from '../sources/source-file-name.js';
import { redactUri } from '../sources/redact-uri.js';
import { CoalescedRunner } from './coalesced-runner.js';
import type { Outbox, OutboxRecord } from './outbox.js';

/** An event as it is delivered: the versioned JSON events of the events file. */
export type DeliveredEvent = Record<string, unknown> & { type?: unknown; source?: unknown };

export interface MqttPublisherOptions {
  /** mqtt://host:1883, mqtts://host:8883 (TLS), ws:// … ; credentials may be in it or given below. */
  url: string;
  /** Topics are `<prefix>/<source>/<event type>`, `<prefix>/<source>/state` and `<prefix>/status`. */
  prefix: string;
  username?: string;
  password?: string;
  clientId?: string;
  /** Also publish the JPEG an event names (`snapshot`) to `<prefix>/<source>/snapshot`, retained. */
  snapshots?: boolean;
  /** Also publish the MP4 a clip.ready event names (`clip`) to `<prefix>/<source>/clip`, not retained. */
  clips?: boolean;
  /** The outbox this publisher reads (as target `mqtt`) and acknowledges after each PUBACK. */
  outbox: Outbox<DeliveredEvent>;
  log: Logger;
}

/** The outbox target name of the MQTT publisher. */
export const MQTT_TARGET = 'mqtt';
/** Records read from the outbox per batch (published one at a time, in order). */
const BATCH = 100;

/**
 * Delivers the outbox to an MQTT broker, in order, at least once: each event is published with QoS 1 and
 * acknowledged in the outbox only after the broker's PUBACK, so a broker that goes away (or a visionpipe that is
 * killed) costs nothing: delivery resumes from the last acknowledged event when the broker is back (or at the next
 * start). Nothing is handed to mqtt.js while it is disconnected, so its unbounded in-memory offline queue never
 * grows: the backlog waits on disk. Topics: `<prefix>/<source>/<type>` (QoS 1), `<prefix>/<source>/state`
 * (retained: the source's latest state), `<prefix>/status` (retained `online` / `offline`, also the last will).
 */
export class MqttPublisher {
  readonly #options: MqttPublisherOptions;
  readonly #client: MqttClient;
  readonly #runner = new CoalescedRunner(() => this.#pump());
  #closed = false;
  /** The last clips whose bytes went out (a shared clip is announced once per event, sent once). */
  readonly #clipsSent: string[] = [];
  delivered = 0;
  failed = 0;
  /** Called per delivered event with appended → acknowledged time (for the delivery latency metric). */
  onDelivered: ((latencyMs: number) => void) | null = null;

  constructor(options: MqttPublisherOptions) {
    this.#options = options;
    const status = `${options.prefix}/status`;
    this.#client = mqtt.connect(options.url, {
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(options.password === undefined ? {} : { password: options.password }),
      clientId: options.clientId ?? `visionpipe-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      will: { topic: status, payload: Buffer.from('offline'), qos: 1, retain: true },
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      queueQoSZero: false,
    });
    this.#client.on('connect', () => {
      options.log.info({ broker: redactUri(options.url) }, 'MQTT connected');
      this.#client.publish(status, 'online', { qos: 1, retain: true });
      this.notify();
    });
    this.#client.on('error', (err) => options.log.warn({ broker: redactUri(options.url), err: redactUri(err.message) }, 'MQTT error'));
    this.#client.on('offline', () => options.log.warn({ broker: redactUri(options.url) }, 'MQTT broker unreachable: events wait in the outbox'));
  }

  /** Events not yet acknowledged by the broker. */
  get depth(): number {
    return this.#options.outbox.depth(MQTT_TARGET);
  }

  /** New events are in the outbox: deliver them (when connected; a no-op while a delivery is running). */
  notify(): void {
    if (!this.#closed) this.#runner.request();
  }


  /**
   * Waits up to `timeoutMs` for the outbox to drain, then publishes `offline` and disconnects. What is not
   * delivered stays in the outbox for the next start.
   */
  async close(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.depth > 0 && this.#client.connected && Date.now() < deadline) {
      this.notify();
      await new Promise((r) => setTimeout(r, 20));
    }
    this.#closed = true;
    // A broker that holds the connection open but answers nothing must not hold shutdown: the goodbye gets what
    // is left of the budget (at least a second), then the connection is dropped (its last will says offline).
    const leftMs = Math.max(1000, deadline - Date.now());
    const goodbye = async () => {
      if (this.#client.connected) await this.#client.publishAsync(`${this.#options.prefix}/status`, 'offline', { qos: 1, retain: true });
      await this.#client.endAsync();
    };
    const ended = await withDeadline(goodbye().then(() => true, () => false), leftMs);
    if (!ended) await new Promise<void>((resolve) => this.#client.end(true, {}, () => resolve()));
  }

  async #pump(): Promise<void> {
    const { outbox } = this.#options;
    while (!this.#closed && this.#client.connected) {
      const batch = outbox.read(MQTT_TARGET, BATCH);
      if (batch.length === 0) return;
      for (const record of batch) {
        if (!(await this.#publish(record))) return; // disconnected: resume from this record on reconnect
        outbox.ack(MQTT_TARGET, record.seq);
        this.delivered++;
        this.onDelivered?.(Date.now() - record.atMs);
      }
    }
  }

  async #publish(record: OutboxRecord<DeliveredEvent>): Promise<boolean> {
    const event = record.event;
    const source = typeof event.source === 'string' ? sourceFileName(event.source) : '_';
    const type = typeof event.type === 'string' ? event.type : 'event';
    // State changes also go to one retained topic per source: a new subscriber learns each camera's state at once.
    const isState = type === 'source-state';
    const topic = isState ? `${this.#options.prefix}/${source}/state` : `${this.#options.prefix}/${source}/${type}`;
    try {
      await this.#client.publishAsync(topic, JSON.stringify(event), { qos: 1, retain: isState });
      if (this.#options.snapshots === true && typeof event['snapshot'] === 'string') {
        // The latest snapshot of the source, as raw JPEG bytes (what Home Assistant's MQTT camera shows). A file
        // deleted since (the snapshot bound) is skipped: the event, already delivered, still names it.
        const jpeg = await readFile(event['snapshot']).catch(() => null);
        if (jpeg !== null) await this.#client.publishAsync(`${this.#options.prefix}/${source}/snapshot`, jpeg, { qos: 1, retain: true });
      }
      // Events close in time share a clip, each with its clip.ready: the file is sent once.
      if (this.#options.clips === true && type === 'clip.ready' && typeof event['clip'] === 'string' && !this.#clipsSent.includes(event['clip'])) {
        // The clip's bytes, after the event that says it is ready; a clip deleted since (the clip bound) or too big
        // for one message is skipped: the event, already delivered, still names the file.
        const mp4 = await readClip(event['clip']);
        if (mp4 !== null) await this.#client.publishAsync(`${this.#options.prefix}/${source}/clip`, mp4, { qos: 1, retain: false });
        this.#clipsSent.push(event['clip']);
        if (this.#clipsSent.length > 16) this.#clipsSent.shift();
      }
      return true;
    } catch (err) {
      this.failed++;
      this.#options.log.debug({ err: redactUri((err as Error).message), seq: record.seq }, 'MQTT publish not acknowledged; will retry');
      return false;
    }
  }
}

/** Clips bigger than this are not sent as one MQTT message (brokers cap messages; mosquitto's default is 256 MiB). */
const MAX_CLIP_MESSAGE_BYTES = 64 * 1024 * 1024;

async function readClip(path: string): Promise<Buffer | null> {
  const info = await stat(path).catch(() => null);
  if (info === null || info.size > MAX_CLIP_MESSAGE_BYTES) return null;
  return readFile(path).catch(() => null);
}

/** `promise`'s value, or undefined once `ms` have passed without it. */
async function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
