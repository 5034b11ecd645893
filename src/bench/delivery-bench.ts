import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { MqttPublisher, type DeliveredEvent } from '../delivery/mqtt-publisher.js';
import { Outbox, type FsyncPolicy } from '../delivery/outbox.js';
import { silentLogger } from '../log.js';
import { percentile } from '../metrics/run-stats.js';
import { Mosquitto } from './mosquitto-broker.js';

export interface DeliveryBenchRow {
  fsync: FsyncPolicy;
  events: number;
  /** Events appended and received by a subscriber, per second, end to end. */
  eventsPerS: number;
  /** Appending alone (the pipeline's cost per event), µs. */
  appendUsMean: number;
  /** Event appended → received by a subscriber, ms. */
  latencyMs: { p50: number; p99: number };
}

/**
 * Events through the outbox to a real mosquitto and back to a subscriber, for each fsync policy in one run:
 * `events` events appended at `ratePerS` (a busy multi-camera system), measuring the sustained rate and the
 * append → receive latency.
 */
export async function benchDelivery(options: { events?: number; ratePerS?: number } = {}): Promise<DeliveryBenchRow[]> {
  const events = options.events ?? 3000;
  const ratePerS = options.ratePerS ?? 1000;
  const dir = mkdtempSync(join(tmpdir(), 'visionpipe-bench-delivery-'));
  const broker = await Mosquitto.start(join(dir, 'broker'));
  const rows: DeliveryBenchRow[] = [];
  try {
    for (const fsync of ['never', 'interval', 'always'] as const) {
      const received = new Map<string, number>();
      const sub = mqtt.connect(broker.url);
      sub.on('message', (_topic, body) => received.set((JSON.parse(body.toString()) as { id: string }).id, performance.now()));
      await sub.subscribeAsync('bench/+/line.cross', { qos: 1 });
      const outbox = new Outbox<DeliveredEvent>({ dir: join(dir, fsync), fsync, maxBytes: null, maxAgeMs: null });
      const publisher = new MqttPublisher({ url: broker.url, prefix: 'bench', outbox, log: silentLogger });
      await new Promise((r) => setTimeout(r, 300)); // connected
      const appendedAt = new Map<string, number>();
      let appendUs = 0;
      const startMs = performance.now();
      for (let i = 0; i < events; i++) {
        const id = `${fsync}-${i}`;
        const t0 = performance.now();
        outbox.append({ schemaVersion: 1, id, type: 'line.cross', source: 'cam', trackId: i, counts: { in: i, out: 0 } });
        appendUs += (performance.now() - t0) * 1000;
        appendedAt.set(id, t0);
        publisher.notify();
        // Paced: the next event is due at i / rate.
        const dueMs = startMs + ((i + 1) * 1000) / ratePerS;
        const waitMs = dueMs - performance.now();
        if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
        else if (i % 200 === 0) await new Promise((r) => setImmediate(r)); // unpaced: let delivery run
      }
      const deadline = performance.now() + 60_000;
      while (received.size < events && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const endMs = Math.max(...received.values());
      const latencies = [...received].map(([id, at]) => at - (appendedAt.get(id) ?? at)).sort((a, b) => a - b);
      rows.push({
        fsync,
        events: received.size,
        eventsPerS: (received.size * 1000) / (endMs - startMs),
        appendUsMean: appendUs / events,
        latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
      });
      await publisher.close(1000);
      outbox.close();
      await sub.endAsync();
    }
  } finally {
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

export function formatDeliveryBench(rows: DeliveryBenchRow[], ratePerS = 1000): string {
  return [
    `### delivery: outbox → mosquitto (QoS 1) → a subscriber, offered ${Number.isFinite(ratePerS) ? `${ratePerS} events/s` : 'as fast as appends go'}`,
    '',
    '| outbox fsync | events received | sustained events/s | append µs (mean) | latency p50 ms | latency p99 ms |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.fsync} | ${r.events} | ${r.eventsPerS.toFixed(0)} | ${r.appendUsMean.toFixed(1)} | ${r.latencyMs.p50.toFixed(2)} | ${r.latencyMs.p99.toFixed(2)} |`),
    '',
  ].join('\n');
}
