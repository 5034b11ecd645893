import type { Logger } from '../log.js';
import type { AnnotatedFrame } from '../pipeline/frame.js';
import { toEventJson } from '../pipeline/prediction-event.js';
import type { Sink } from '../sinks/sink.js';
import type { DeliveryConfig } from './delivery-schema.js';
import { MqttPublisher, MQTT_TARGET, type DeliveredEvent } from './mqtt-publisher.js';
import { Outbox } from './outbox.js';

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
  readonly #mqtt: MqttPublisher | null;
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
      maxAgeMs: outbox.maxAgeSeconds === null ? null : outbox.maxAgeSeconds * 1000,
    });
    if (this.#outbox.recoveredTornBytes > 0) log.warn({ bytes: this.#outbox.recoveredTornBytes }, 'outbox: cut a torn last event (an earlier run was killed mid-write)');
    const backlog = this.#outbox.depth(MQTT_TARGET);
    if (config.mqtt !== null && backlog > 0) log.info({ events: backlog }, 'outbox: delivering what an earlier run left undelivered');
    this.#mqtt =
      config.mqtt === null
        ? null
        : new MqttPublisher({
            url: config.mqtt.url,
            prefix: config.mqtt.prefix,
            ...(config.mqtt.username === undefined ? {} : { username: config.mqtt.username }),
            ...(config.mqtt.password === undefined ? {} : { password: config.mqtt.password }),
            outbox: this.#outbox,
            log,
          });
    this.#retention = setInterval(() => this.#enforceRetention(), RETENTION_INTERVAL_MS).unref();
  }

  /** Events not yet delivered to MQTT. */
  get depth(): number {
    return this.#outbox.depth(MQTT_TARGET);
  }

  async write(frame: AnnotatedFrame): Promise<void> {
    if (this.#frameEvents) this.#append(toEventJson(frame.prediction));
  }

  writeEvent(event: Record<string, unknown>): void {
    this.#append(event);
  }

  async close(): Promise<string> {
    const undelivered = await this.#end();
    return `${this.#outbox.dir} (${undelivered === 0 ? 'all delivered' : `${undelivered} waiting for the next start`})`;
  }

  async abort(): Promise<string | null> {
    await this.#end();
    return null;
  }

  #append(event: Record<string, unknown>): void {
    if (this.#closed) return;
    this.#outbox.append(event);
    this.#mqtt?.notify();
  }

  async #end(): Promise<number> {
    if (this.#closed) return this.depth;
    this.#closed = true;
    clearInterval(this.#retention);
    await this.#mqtt?.close(DRAIN_ON_CLOSE_MS);
    this.#enforceRetention();
    const undelivered = this.#mqtt === null ? 0 : this.depth;
    this.#outbox.close();
    return undelivered;
  }

  #enforceRetention(): void {
    const drop = this.#outbox.enforceRetention(this.#mqtt === null ? [] : [MQTT_TARGET]);
    if (drop.unacknowledged === 0) return;
    this.dropped += drop.unacknowledged;
    this.#log.warn({ dropped: drop.unacknowledged, byTarget: drop.byTarget }, 'outbox full (delivery.outbox.maxBytes / maxAgeSeconds): the oldest undelivered events were dropped');
  }
}
