import { createHmac } from 'node:crypto';
import type { Logger } from '../log.js';
import { redactUri } from '../sources/redact-uri.js';
import type { DeliveredEvent } from './mqtt-publisher.js';
import { CoalescedRunner } from './coalesced-runner.js';
import type { Outbox } from './outbox.js';

/** One webhook (config `delivery.webhooks[]`). Filters left out match everything. */
export interface WebhookOptions {
  /** The outbox target name (its own acknowledged position). */
  target: string;
  url: string;
  /** HMAC-SHA256 key: the body's signature goes in `x-visionpipe-signature: sha256=<hex>`. */
  secret?: string | undefined;
  /** Event types to post, e.g. `line.cross`. */
  types?: readonly string[] | undefined;
  /** Object classes (label, or class id as a string). Events without a class (state changes) pass. */
  classes?: readonly string[] | undefined;
  /** Zones (for zone events) and lines (for line.cross); other events pass. */
  zones?: readonly string[] | undefined;
  /** Source ids. */
  sources?: readonly string[] | undefined;
  /** One POST may take this long. */
  timeoutMs: number;
  outbox: Outbox<DeliveredEvent>;
  log: Logger;
  /** First retry wait; doubles per failure up to maxRetryDelayMs (± 20 % jitter). Retry-After wins when sent. */
  initialRetryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** For tests. */
  sleep?: (ms: number) => Promise<void>;
}

/** Statuses that refuse the event itself (malformed, too large, wrong type): skipped, not retried. */
const REFUSALS = new Set([400, 405, 413, 415, 422]);

/** The longest Retry-After honoured (a receiver asking for an hour still gets retried within this). */
const MAX_RETRY_AFTER_MS = 300_000;

/** True for the events a webhook's filters let through. */
export function webhookWants(options: Pick<WebhookOptions, 'types' | 'classes' | 'zones' | 'sources'>, event: DeliveredEvent): boolean {
  const has = (list: readonly string[] | undefined, value: unknown) => list === undefined || value === undefined || list.includes(String(value));
  const place = event['zone'] ?? event['line'];
  const classless = event['label'] === undefined && event['classId'] === undefined;
  const classOk = options.classes === undefined || classless || options.classes.includes(String(event['label'])) || options.classes.includes(String(event['classId']));
  return has(options.types, event.type) && classOk && has(options.zones, place) && has(options.sources, event.source);
}

/** `sha256=<hex>` of the body under the secret: what a receiver recomputes to check the sender. */
export function webhookSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Posts the outbox's events to one HTTP endpoint, in order, at least once. Each POST carries the event as JSON,
 * `idempotency-key: <event id>` (a receiver drops what it has seen), and with a secret an HMAC-SHA256 signature.
 * 2xx: delivered. 408, 429, 5xx, a timeout or a network error: retried with exponential backoff and jitter, or
 * after the receiver's Retry-After; the queue waits behind it (order is kept). Other 4xx: the receiver refuses that
 * event for good — logged, counted, and skipped so that one bad event cannot block the rest.
 */
export class WebhookPublisher {
  readonly #o: WebhookOptions;
  readonly #runner = new CoalescedRunner(() => this.#pump());
  #closed = false;
  #wake: (() => void) | null = null;
  /** Aborts the POST in flight when closed (a receiver that never answers must not keep the process alive). */
  readonly #abort = new AbortController();
  delivered = 0;
  rejected = 0;
  retries = 0;
  /** Called per delivered event with appended → acknowledged time (for the delivery latency metric). */
  onDelivered: ((latencyMs: number) => void) | null = null;

  /** The URL as logs show it: scheme, host and port only (paths often carry tokens: /api/webhook/<secret>). */
  readonly #shownUrl: string;

  constructor(options: WebhookOptions) {
    this.#o = options;
    this.#shownUrl = new URL(options.url).origin;
  }

  get depth(): number {
    return this.#o.outbox.depth(this.#o.target);
  }

  notify(): void {
    if (!this.#closed) this.#runner.request();
  }


  /** Waits up to `timeoutMs` for the queue to drain, then stops (the rest waits in the outbox for the next start). */
  async close(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.notify();
    while (this.depth > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.#closed = true;
    this.#wake?.();
    this.#abort.abort();
  }

  async #pump(): Promise<void> {
    const { outbox, target } = this.#o;
    let delayMs = this.#o.initialRetryDelayMs ?? 500;
    while (!this.#closed) {
      const [record] = outbox.read(target, 1);
      if (record === undefined) return;
      if (!webhookWants(this.#o, record.event)) {
        outbox.ack(target, record.seq);
        continue;
      }
      const outcome = await this.#post(record.event);
      if (outcome.kind === 'retry') {
        if (this.#closed) return;
        this.retries++;
        // Retry-After can ask for longer, never for less: `Retry-After: 0` must not become a busy loop.
        const waitMs = Math.max(outcome.retryAfterMs ?? 0, jitter(delayMs));
        delayMs = Math.min(delayMs * 2, this.#o.maxRetryDelayMs ?? 30_000);
        this.#o.log.debug({ webhook: this.#shownUrl, why: redactUri(outcome.why), waitMs }, 'webhook failed; retrying');
        await this.#sleep(waitMs);
        continue;
      }
      if (outcome.kind === 'rejected') {
        this.rejected++;
        this.#o.log.warn({ webhook: this.#shownUrl, status: outcome.status, id: record.event['id'] }, 'webhook refused an event for good (400, 405, 413, 415 or 422): skipped');
      } else {
        this.delivered++;
        this.onDelivered?.(Date.now() - record.atMs);
      }
      outbox.ack(target, record.seq);
      delayMs = this.#o.initialRetryDelayMs ?? 500;
    }
  }

  async #post(event: DeliveredEvent): Promise<{ kind: 'delivered' } | { kind: 'rejected'; status: number } | { kind: 'retry'; why: string; retryAfterMs?: number }> {
    const body = JSON.stringify(event);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'visionpipe' };
    if (typeof event['id'] === 'string') headers['idempotency-key'] = event['id'];
    if (typeof event.type === 'string') headers['x-visionpipe-event'] = event.type;
    if (this.#o.secret !== undefined) headers['x-visionpipe-signature'] = webhookSignature(this.#o.secret, body);
    let response: Response;
    try {
      // Redirects are not followed: a 301 / 302 would turn the POST into a body-less GET and look delivered.
      const signal = AbortSignal.any([AbortSignal.timeout(this.#o.timeoutMs), this.#abort.signal]);
      response = await fetch(this.#o.url, { method: 'POST', headers, body, signal, redirect: 'manual' });
      await response.arrayBuffer().catch(() => undefined);
    } catch (err) {
      return { kind: 'retry', why: (err as Error).name === 'TimeoutError' ? `no answer within ${this.#o.timeoutMs} ms` : (err as Error).message };
    }
    if (response.ok) return { kind: 'delivered' };
    const { status } = response;
    // Only a refusal of the event itself is final; a missing route, auth, a redirect or an overloaded receiver is
    // the receiver's state, which changes: retried, so that a webhook down (or misdeployed) for minutes loses nothing.
    if (REFUSALS.has(status)) return { kind: 'rejected', status };
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    const why = status >= 300 && status < 400 ? `HTTP ${status} redirect to ${response.headers.get('location') ?? '?'} (not followed: fix the webhook URL)` : `HTTP ${status}`;
    return { kind: 'retry', why, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  }

  /** Sleeps, but wakes early when closed. */
  #sleep(ms: number): Promise<void> {
    if (this.#o.sleep !== undefined) return this.#o.sleep(ms);
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** Retry-After in seconds or as an HTTP date → ms from now (capped); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - nowMs;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}

function jitter(ms: number): number {
  return ms * (0.8 + Math.random() * 0.4);
}
