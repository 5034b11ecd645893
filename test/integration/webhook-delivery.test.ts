import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DeliveredEvent } from '../../src/delivery/mqtt-publisher.js';
import { Outbox } from '../../src/delivery/outbox.js';
import { WebhookPublisher, parseRetryAfter, webhookSignature, webhookWants } from '../../src/delivery/webhook-publisher.js';
import { silentLogger } from '../../src/log.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-webhook-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Received {
  atMs: number;
  body: string;
  headers: IncomingMessage['headers'];
}

/** A real HTTP receiver on 127.0.0.1 whose answers the test scripts (status, headers), recording every request. */
async function receiver(answer: (n: number) => { status: number; headers?: Record<string, string> }) {
  const got: Received[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      got.push({ atMs: Date.now(), body, headers: req.headers });
      const { status, headers } = answer(got.length);
      res.writeHead(status, headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return { got, url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 20));
}

const event = (i: number, extra: Record<string, unknown> = {}): DeliveredEvent => ({
  schemaVersion: 1,
  id: `run-${i}`,
  type: 'line.cross',
  source: 'cam',
  trackId: i,
  classId: 0,
  label: 'person',
  line: 'gate',
  ...extra,
});

function outbox(name: string) {
  return new Outbox<DeliveredEvent>({ dir: join(dir, name), fsync: 'never', maxBytes: null, maxAgeMs: null });
}

describe('webhook delivery to a real HTTP receiver', () => {
  it('500 three times, then 200: retried, delivered once, signed, keyed by the event id', async () => {
    const hook = await receiver((n) => ({ status: n <= 3 ? 500 : 200 }));
    const box = outbox('w1');
    const publisher = new WebhookPublisher({ target: 'hook', url: hook.url, secret: 's3cret', timeoutMs: 2000, outbox: box, log: silentLogger, initialRetryDelayMs: 20 });
    try {
      box.append(event(1));
      publisher.notify();
      await until(() => publisher.delivered === 1);
      expect(hook.got).toHaveLength(4);
      expect(publisher.retries).toBe(3);
      const last = hook.got[3];
      expect(last?.headers['idempotency-key']).toBe('run-1');
      expect(last?.headers['x-visionpipe-event']).toBe('line.cross');
      // The receiver recomputes the signature from the raw body and its copy of the secret.
      expect(last?.headers['x-visionpipe-signature']).toBe(webhookSignature('s3cret', last?.body ?? ''));
      expect(webhookSignature('wrong', last?.body ?? '')).not.toBe(last?.headers['x-visionpipe-signature']);
      expect(JSON.parse(last?.body ?? '{}')).toEqual(event(1));
      expect(box.depth('hook')).toBe(0);
    } finally {
      await publisher.close(100);
      await hook.close();
      box.close();
    }
  });

  it("honours Retry-After, keeps order behind a failing event, and skips one the receiver refuses for good", async () => {
    const hook = await receiver((n) => (n === 1 ? { status: 503, headers: { 'retry-after': '1' } } : n === 2 ? { status: 422 } : { status: 204 }));
    const box = outbox('w2');
    const publisher = new WebhookPublisher({ target: 'hook', url: hook.url, timeoutMs: 2000, outbox: box, log: silentLogger, initialRetryDelayMs: 20 });
    try {
      for (let i = 1; i <= 3; i++) box.append(event(i));
      publisher.notify();
      await until(() => box.depth('hook') === 0);
      // 1: 503 with Retry-After 1 s; 1 again: 422 (refused: skipped); 2 and 3: delivered, in order.
      expect(hook.got.map((r) => (JSON.parse(r.body) as { id: string }).id)).toEqual(['run-1', 'run-1', 'run-2', 'run-3']);
      expect((hook.got[1]?.atMs ?? 0) - (hook.got[0]?.atMs ?? 0)).toBeGreaterThanOrEqual(950);
      expect(publisher.rejected).toBe(1);
      expect(publisher.delivered).toBe(2);
    } finally {
      await publisher.close(100);
      await hook.close();
      box.close();
    }
  });

  it('a redirect is not followed (it would turn the POST into a GET) but retried; Retry-After 0 is no busy loop', async () => {
    const answer = (n: number): { status: number; headers?: Record<string, string> } =>
      n <= 2 ? { status: 302, headers: { location: '/elsewhere' } } : n <= 4 ? { status: 503, headers: { 'retry-after': '0' } } : { status: 200 };
    const hook = await receiver(answer);
    const box = outbox('w4');
    const publisher = new WebhookPublisher({ target: 'hook', url: hook.url, timeoutMs: 2000, outbox: box, log: silentLogger, initialRetryDelayMs: 100 });
    try {
      box.append(event(1));
      publisher.notify();
      await until(() => publisher.delivered === 1);
      // Every attempt was a POST to the configured URL, and the Retry-After 0 answers still waited the backoff.
      expect(hook.got).toHaveLength(5);
      expect(hook.got.every((r) => r.body.includes('run-1'))).toBe(true);
    } finally {
      await publisher.close(100);
      await hook.close();
      box.close();
    }
  });

  it('receiver down: nothing is lost; delivered in order once it is up', async () => {
    const box = outbox('w3');
    // A port nothing listens on yet.
    const probe = await receiver(() => ({ status: 200 }));
    const url = probe.url;
    await probe.close();
    const publisher = new WebhookPublisher({ target: 'hook', url, timeoutMs: 500, outbox: box, log: silentLogger, initialRetryDelayMs: 20, maxRetryDelayMs: 100 });
    for (let i = 1; i <= 5; i++) box.append(event(i));
    publisher.notify();
    await until(() => publisher.retries >= 3);
    expect(box.depth('hook')).toBe(5);
    const port = Number(new URL(url).port);
    const got: string[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        got.push((JSON.parse(body) as { id: string }).id);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
    try {
      await until(() => box.depth('hook') === 0);
      expect(got).toEqual(['run-1', 'run-2', 'run-3', 'run-4', 'run-5']);
    } finally {
      await publisher.close(100);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      box.close();
    }
  });

  it('filters by type, class, zone or line, and source; events without a class pass class filters', () => {
    const wants = (filter: Parameters<typeof webhookWants>[0], e: DeliveredEvent) => webhookWants(filter, e);
    expect(wants({ types: ['zone.enter'] }, event(1))).toBe(false);
    expect(wants({ types: ['line.cross'] }, event(1))).toBe(true);
    expect(wants({ classes: ['car'] }, event(1))).toBe(false);
    expect(wants({ classes: ['0'] }, event(1))).toBe(true);
    expect(wants({ classes: ['car'] }, { type: 'source-state', source: 'cam', state: 'live' })).toBe(true);
    expect(wants({ zones: ['door'] }, event(1))).toBe(false);
    expect(wants({ zones: ['gate'] }, event(1))).toBe(true);
    expect(wants({ sources: ['other'] }, event(1))).toBe(false);
  });

  it('Retry-After in seconds or as an HTTP date, capped at 5 minutes', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(new Date(10_000 + 3000).toUTCString(), 10_000)).toBe(3000);
    expect(parseRetryAfter('86400')).toBe(300_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});
