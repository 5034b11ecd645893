import type { Logger } from '../log.js';
import type { AnnotatedFrame } from '../pipeline/frame.js';
import { stampEvent } from '../pipeline/event-stamp.js';
import { toEventJson } from '../pipeline/prediction-event.js';
import type { Sink } from '../sinks/sink.js';
import { webhookTargetName, type DeliveryConfig } from './delivery-schema.js';
import { MqttPublisher, MQTT_TARGET, type DeliveredEvent } from './mqtt-publisher.js';
import { Outbox } from './outbox.js';
import { WebhookPublisher } from './webhook-publisher.js';

/** What the sink needs of a delivery target: MQTT and each webhook read the outbox from their own position. */
interface Target {
  readonly name: string;
  readonly publisher: {
    readonly depth: number;
    readonly delivered: number;
    onDelivered: ((latencyMs: number) => void) | null;
    notify(): void;
    close(timeoutMs?: number): Promise<void>;
  };
}

/** One target's numbers, as the metrics endpoint reads them at each scrape. */
export interface DeliveryTargetStats {
  target: string;
  delivered: number;
  /** Failed attempts (retried) and events refused for good, together. */
  failed: number;
  /** Events not yet delivered, and the age of the oldest of them. */
  depth: number;
  oldestUndeliveredS: number;
}

/** True when the config delivers anywhere (the delivery sink is opened only then). */
export function deliversEvents(config: DeliveryConfig): boolean {
  return config.mqtt !== null || config.webhooks.length > 0;
}

/** How often the outbox's size and age bounds are applied. */
const RETENTION_INTERVAL_MS = 10_000;
/** How long closing waits for targets to take what is left (the rest waits in the outbox for the next start). */
const DRAIN_ON_CLOSE_MS = 5000;

/**
 * The delivery output: every event goes into the outbox first (durable per `delivery.outbox.fsync`), then to each
 * target (MQTT), which acknowledges it in the outbox once delivered. Opening it also resumes what a previous run
 * left undelivered. Closing waits a few seconds for the targets to catch up; what is still undelivered stays on
 * disk for the next start.
 */
export class DeliverySink implements Sink {
  readonly name = 'delivery';
  readonly #outbox: Outbox<DeliveredEvent>;
  readonly #targets: Target[] = [];
  readonly #frameEvents: boolean;
  readonly #retention: NodeJS.Timeout;
  readonly #log: Logger;
  #closed = false;
  dropped = 0;

  constructor(config: DeliveryConfig, log: Logger) {
    const { outbox } = config;
    this.#log = log;
    this.#frameEvents = config.frameEvents;
    this.#outbox = new Outbox<DeliveredEvent>({
      dir: outbox.dir,
      fsync: outbox.fsync,
      fsyncIntervalMs: outbox.fsyncIntervalMs,
      maxBytes: outbox.maxBytes,
      // Retention deletes whole segments and keeps the newest: segments of a quarter of the bound let it hold.
      segmentBytes: outbox.maxBytes === null ? 8 * 1024 * 1024 : Math.max(1024, Math.min(8 * 1024 * 1024, Math.floor(outbox.maxBytes / 4))),
      maxAgeMs: outbox.maxAgeSeconds === null ? null : outbox.maxAgeSeconds * 1000,
    });
    if (this.#outbox.recoveredTornBytes > 0) log.warn({ bytes: this.#outbox.recoveredTornBytes }, 'outbox: cut a torn last event (an earlier run was killed mid-write)');
    if (config.mqtt !== null) {
      const { url, prefix, username, password, snapshots, clips } = config.mqtt;
      const options = { url, prefix, snapshots, clips, outbox: this.#outbox, log, ...(username === undefined ? {} : { username }), ...(password === undefined ? {} : { password }) };
      this.#targets.push({ name: MQTT_TARGET, publisher: new MqttPublisher(options) });
    }
    config.webhooks.forEach((w, i) => {
      const target = webhookTargetName(w, i);
      const publisher = new WebhookPublisher({ ...w, target, outbox: this.#outbox, log });
      this.#targets.push({ name: target, publisher });
    });
    for (const t of this.#targets) {
      this.#outbox.addTarget(t.name);
      if (t.publisher.depth > 0) log.info({ target: t.name, events: t.publisher.depth }, 'outbox: delivering what an earlier run left undelivered');
      t.publisher.notify();
    }
    this.#enforceRetention(); // a bound lowered since the last run holds from the start
    this.#retention = setInterval(() => this.#enforceRetention(), RETENTION_INTERVAL_MS).unref();
  }

  /** Per target: delivered, failed, waiting, and how old the oldest waiting event is. */
  stats(): DeliveryTargetStats[] {
    return this.#targets.map((t) => {
      const p = t.publisher as Target['publisher'] & { failed?: number; retries?: number; rejected?: number };
      return {
        target: t.name,
        delivered: p.delivered,
        failed: (p.failed ?? 0) + (p.retries ?? 0) + (p.rejected ?? 0),
        depth: p.depth,
        oldestUndeliveredS: this.#closed ? 0 : this.#outbox.oldestUnacknowledgedAgeMs(t.name) / 1000,
      };
    });
  }

  /** Calls `listener(target, latencyMs)` for each delivered event (appended to the outbox → acknowledged). */
  onDelivered(listener: (target: string, latencyMs: number) => void): void {
    for (const t of this.#targets) t.publisher.onDelivered = (ms) => listener(t.name, ms);
  }

  /** Events dropped by the outbox's bounds before every target had them. */
  get droppedUndelivered(): number {
    return this.dropped;
  }

  /** Events not yet delivered, per target. */
  depths(): Record<string, number> {
    return Object.fromEntries(this.#targets.map((t) => [t.name, t.publisher.depth]));
  }

  async write(frame: AnnotatedFrame): Promise<void> {
    if (this.#frameEvents) this.#append(toEventJson(frame.prediction));
  }

  writeEvent(event: Record<string, unknown>): void {
    this.#append(stampEvent(event));
  }

  async close(): Promise<string> {
    const undelivered = await this.#end();
    const waiting = Object.entries(undelivered).filter(([, n]) => n > 0);
    return `${this.#outbox.dir} (${waiting.length === 0 ? 'all delivered' : `waiting for the next start: ${waiting.map(([t, n]) => `${t} ${n}`).join(', ')}`})`;
  }

  async abort(): Promise<string | null> {
    await this.#end();
    return null;
  }

  #append(event: Record<string, unknown>): void {
    if (this.#closed) return;
    this.#outbox.append(event);
    for (const t of this.#targets) t.publisher.notify();
  }

  async #end(): Promise<Record<string, number>> {
    if (this.#closed) return this.depths();
    this.#closed = true;
    clearInterval(this.#retention);
    await Promise.all(this.#targets.map((t) => t.publisher.close(DRAIN_ON_CLOSE_MS)));
    this.#enforceRetention();
    const undelivered = this.depths();
    this.#outbox.close();
    return undelivered;
  }

  #enforceRetention(): void {
    const drop = this.#outbox.enforceRetention(this.#targets.map((t) => t.name));
    if (drop.unacknowledged === 0) return;
    this.dropped += drop.unacknowledged;
    this.#log.warn({ dropped: drop.unacknowledged, byTarget: drop.byTarget }, 'outbox full (delivery.outbox.maxBytes / maxAgeSeconds): the oldest undelivered events were dropped');
  }
}
