import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DeliverySchema } from '../../../src/delivery/delivery-schema.js';
import { DeliverySink } from '../../../src/delivery/delivery-sink.js';
import { Outbox } from '../../../src/delivery/outbox.js';
import type { Logger } from '../../../src/log.js';
import { silentLogger } from '../../../src/log.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-delivery-sink-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('DeliverySink', () => {
  it('the outbox at its byte bound: the oldest undelivered events go, counted and logged; the newest are kept', async () => {
    const warnings: string[] = [];
    const log = { ...silentLogger, warn: (_: unknown, msg: string) => warnings.push(msg), info: () => undefined, debug: () => undefined } as unknown as Logger;
    const outboxDir = join(dir, 'bounded');
    // A webhook nobody answers: nothing is ever delivered.
    const config = DeliverySchema.parse({ webhooks: [{ name: 'down', url: 'http://127.0.0.1:9/', timeoutMs: 100 }], outbox: { dir: outboxDir, maxBytes: 4096 } });
    const sink = new DeliverySink(config, log);
    for (let i = 1; i <= 200; i++) sink.writeEvent({ type: 'line.cross', id: `r-${i}`, source: 'cam', pad: 'x'.repeat(40) });
    await sink.close();
    expect(sink.dropped).toBeGreaterThan(100);
    expect(warnings.some((w) => w.includes('oldest undelivered events were dropped'))).toBe(true);
    const left = new Outbox<{ id: string }>({ dir: outboxDir, fsync: 'never', maxBytes: null, maxAgeMs: null });
    const kept = left.read('down', 1000).map((r) => r.event.id);
    expect(kept.at(-1)).toBe('r-200');
    expect(kept.length + sink.dropped).toBe(200);
    left.close();
  });
});
