import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DeliverySchema } from '../../../src/delivery/delivery-schema.js';
import { DeliverySink } from '../../../src/delivery/delivery-sink.js';
import { silentLogger } from '../../../src/log.js';
import { MetricsServer } from '../../../src/metrics/prometheus.js';
import type { Prediction } from '../../../src/pipeline/frame.js';
import { noDrops, type FrameSource } from '../../../src/sources/frame-source.js';
import { LineSchema, ZoneSchema } from '../../../src/tracking/geometry-schema.js';
import type { ObjectEvent } from '../../../src/tracking/object-events.js';
import { SourceTracking } from '../../../src/tracking/source-tracking.js';
import { trackSettingsOf } from '../../../src/tracking/track-schema.js';

const source = (id: string, kind: 'file' | 'live') => ({ info: { kind, id }, drops: noDrops() }) as unknown as FrameSource;
const prediction = (sourceId: string, latencyMs: number) =>
  ({ sourceId, latencyMs, timingsMs: { read: 1, queue: 2, preprocess: 3, infer: 40, postprocess: 1, annotate: 1 } }) as unknown as Prediction;

describe('Prometheus metrics', () => {
  it('counts predictions, observes latency and stage times, reports drops and each source state', async () => {
    const cam = source('cam', 'live');
    const file = source('clip.mp4', 'file');
    const metrics = await MetricsServer.start('127.0.0.1', 0, [cam, file]);
    try {
      metrics.onPrediction(prediction('cam', 120));
      metrics.onPrediction(prediction('cam', 80));
      metrics.onPrediction(prediction('clip.mp4', 30));
      metrics.onWrite(4);
      cam.drops['ring-full'] += 5;
      cam.drops.stale += 1;
      metrics.onState({ source: 'cam', state: 'backoff' });
      const body = await (await fetch(metrics.url)).text();
      expect(body).toMatch(/^visionpipe_predictions_total\{source="cam"\} 2$/m);
      expect(body).toMatch(/^visionpipe_predictions_total\{source="clip\.mp4"\} 1$/m);
      expect(body).toMatch(/^visionpipe_latency_seconds_bucket\{le="0\.1",source="cam"\} 1$/m);
      expect(body).toMatch(/^visionpipe_latency_seconds_bucket\{le="0\.2",source="cam"\} 2$/m);
      expect(body).toMatch(/^visionpipe_latency_seconds_sum\{source="cam"\} 0\.2$/m);
      expect(body).toMatch(/^visionpipe_stage_seconds_count\{stage="infer"\} 3$/m);
      expect(body).toMatch(/^visionpipe_stage_seconds_count\{stage="write"\} 1$/m);
      expect(body).toMatch(/^visionpipe_frames_dropped_total\{source="cam",reason="ring-full"\} 5$/m);
      expect(body).toMatch(/^visionpipe_frames_dropped_total\{source="cam",reason="stale"\} 1$/m);
      expect(body).toMatch(/^visionpipe_source_state\{source="cam",state="backoff"\} 1$/m);
      expect(body).toMatch(/^visionpipe_source_state\{source="cam",state="live"\} 0$/m);
      expect(body).toMatch(/^visionpipe_source_state\{source="clip\.mp4",state="live"\} 1$/m);
      // A second scrape counts only new drops on top.
      cam.drops['ring-full'] += 2;
      expect(await (await fetch(metrics.url)).text()).toMatch(/^visionpipe_frames_dropped_total\{source="cam",reason="ring-full"\} 7$/m);
      expect((await fetch(metrics.url.replace('/metrics', '/'))).status).toBe(404);
    } finally {
      await metrics.close();
    }
    await expect(fetch(metrics.url)).rejects.toThrow();
  });

  it('tracking: objects followed and zone occupancy read at each scrape, object events and line crossings counted', async () => {
    const zones = [ZoneSchema.parse({ name: 'all', polygon: [[0, 0], [640, 0], [640, 480], [0, 480]], minFrames: 1 })];
    const lines = [LineSchema.parse({ name: 'gate', from: [0, 240], to: [640, 240] })];
    const settings = trackSettingsOf({ zones, lines });
    if (settings === null) throw new Error('tracked');
    const tracking = new SourceTracking({ sourceId: 'cam', settings, zones, lines });
    const metrics = await MetricsServer.start('127.0.0.1', 0, [source('cam', 'live')]);
    try {
      metrics.trackTracking(new Map([['cam', tracking]]));
      for (let i = 0; i < 4; i++) {
        const boxes = [100, 300].map((x) => ({ xyxy: [x, 100, x + 40, 180] as [number, number, number, number], score: 0.9, classId: 0, label: 'person' }));
        tracking.update(boxes, { index: i, timestampMs: i * 100, sizeWh: [640, 480] });
      }
      const base = { schemaVersion: 1, id: 'r-1', source: 'cam', trackId: 1, classId: 0, label: 'person', frameIndex: 9, timestampMs: 900, atMs: 0, sinceMs: 800 } as const;
      const cross: ObjectEvent = { ...base, type: 'line.cross', line: 'gate', direction: 'in', counts: { in: 1, out: 0, byClass: { person: { in: 1, out: 0 } } } };
      metrics.onObjectEvent(cross);
      metrics.onObjectEvent({ ...cross, id: 'r-2', direction: 'out' });
      metrics.onObjectEvent({ ...base, id: 'r-3', type: 'zone.enter', zone: 'all', occupancy: 1 });
      const body = await (await fetch(metrics.url)).text();
      expect(body).toMatch(/^visionpipe_tracked_objects\{source="cam"\} 2$/m);
      expect(body).toMatch(/^visionpipe_zone_occupancy\{source="cam",zone="all"\} 2$/m);
      expect(body).toMatch(/^visionpipe_object_events_total\{source="cam",type="line\.cross"\} 2$/m);
      expect(body).toMatch(/^visionpipe_object_events_total\{source="cam",type="zone\.enter"\} 1$/m);
      expect(body).toMatch(/^visionpipe_line_crossings_total\{source="cam",line="gate",class="person",direction="in"\} 1$/m);
      expect(body).toMatch(/^visionpipe_line_crossings_total\{source="cam",line="gate",class="person",direction="out"\} 1$/m);
    } finally {
      await metrics.close();
    }
  });

  it('delivery: events delivered and failed per target, outbox depth, oldest undelivered age, latency', async () => {
    let answers = 0;
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(++answers === 1 ? 500 : 200).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const dir = mkdtempSync(join(tmpdir(), 'visionpipe-metrics-delivery-'));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const sink = new DeliverySink(DeliverySchema.parse({ webhooks: [{ name: 'ops', url }], outbox: { dir } }), silentLogger);
    const metrics = await MetricsServer.start('127.0.0.1', 0, []);
    try {
      metrics.trackDelivery(sink);
      for (let i = 1; i <= 3; i++) sink.writeEvent({ type: 'line.cross', id: `r-${i}`, source: 'cam' });
      while ((sink.stats()[0]?.delivered ?? 0) < 3) await new Promise((r) => setTimeout(r, 20));
      const body = await (await fetch(metrics.url)).text();
      expect(body).toMatch(/^visionpipe_delivery_events_total\{target="ops",result="delivered"\} 3$/m);
      expect(body).toMatch(/^visionpipe_delivery_events_total\{target="ops",result="failed"\} 1$/m);
      expect(body).toMatch(/^visionpipe_delivery_outbox_depth\{target="ops"\} 0$/m);
      expect(body).toMatch(/^visionpipe_delivery_oldest_undelivered_seconds\{target="ops"\} 0$/m);
      expect(body).toMatch(/^visionpipe_delivery_latency_seconds_count\{target="ops"\} 3$/m);
      expect(body).toMatch(/^visionpipe_delivery_dropped_events 0$/m);
    } finally {
      await sink.close();
      await metrics.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a port in use is a VP_CONFIG_INVALID error naming it', async () => {
    const first = await MetricsServer.start('127.0.0.1', 0, []);
    try {
      const port = Number(new URL(first.url).port);
      await expect(MetricsServer.start('127.0.0.1', port, [])).rejects.toMatchObject({ code: 'VP_CONFIG_INVALID', message: expect.stringContaining('EADDRINUSE') });
    } finally {
      await first.close();
    }
  });
});
