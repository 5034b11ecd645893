import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { VisionpipeError } from '../errors.js';
import type { Prediction } from '../pipeline/frame.js';
import type { FrameSource } from '../sources/frame-source.js';
import type { SourceState, SourceStateEvent } from '../sources/source-state.js';
import type { DeliverySink } from '../delivery/delivery-sink.js';
import type { ObjectEvent } from '../tracking/object-events.js';
import type { SourceTracking } from '../tracking/source-tracking.js';

const STATES: readonly SourceState[] = ['connecting', 'live', 'stalled', 'backoff', 'failed', 'stopped'];
const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 2, 5];

/**
 * A Prometheus scrape endpoint for one pipeline (`GET /metrics`, prom-client's text format), on its own registry:
 * predictions and drops per source, capture → prediction latency and per-stage time as histograms, each source's
 * state, and Node's process metrics (RSS, heap, event-loop lag — which shows whether heavy work stays off the loop).
 * Whoever starts it closes it (the pipeline does, in close()).
 */
export class MetricsServer {
  private readonly registry = new Registry();
  private readonly predictions: Counter<'source'>;
  private readonly latency: Histogram<'source'>;
  private readonly stage: Histogram<'stage'>;
  private readonly state: Gauge<'source' | 'state'>;
  private readonly objectEvents: Counter<'source' | 'type'>;
  private readonly lineCrossings: Counter<'source' | 'line' | 'class' | 'direction'>;
  private trackings: ReadonlyMap<string, SourceTracking> = new Map();
  private delivery: DeliverySink | null = null;

  private constructor(
    private readonly server: Server,
    /** e.g. http://127.0.0.1:9464/metrics */
    readonly url: string,
    sources: readonly FrameSource[],
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'visionpipe_process_' });
    this.predictions = new Counter({ name: 'visionpipe_predictions_total', help: 'Frames run through the model and emitted as predictions', labelNames: ['source'], registers });
    cumulativeCounter(
      {
        name: 'visionpipe_frames_dropped_total',
        help: 'Frames not run, by source and reason (ring-full: a newer frame replaced it; stale: older than maxStalenessMs; decode-error; fps-cap: skipped by maxFps; queue-full: backpressure all over maxQueuedFrames; inference-error: the model failed on it)',
        labelNames: ['source', 'reason'],
        registers,
      },
      () => sources.flatMap((s) => Object.entries(s.drops).map(([reason, n]) => [{ source: s.info.id, reason }, n] as const)),
    );
    this.latency = new Histogram({ name: 'visionpipe_latency_seconds', help: 'Capture (frame read) → prediction emitted', labelNames: ['source'], buckets: LATENCY_BUCKETS_S, registers });
    this.stage = new Histogram({ name: 'visionpipe_stage_seconds', help: 'Time per frame in each pipeline stage', labelNames: ['stage'], buckets: LATENCY_BUCKETS_S, registers });
    this.state = new Gauge({ name: 'visionpipe_source_state', help: '1 for the state each source is in (live sources; files report live while read)', labelNames: ['source', 'state'], registers });
    for (const s of sources) this.onState({ source: s.info.id, state: s.info.kind === 'live' ? 'connecting' : 'live' });
    this.objectEvents = new Counter({ name: 'visionpipe_object_events_total', help: 'Object events emitted (tracked sources), by source and type', labelNames: ['source', 'type'], registers });
    this.lineCrossings = new Counter({
      name: 'visionpipe_line_crossings_total',
      help: 'Counted line crossings, by source, line, class and direction (in / out)',
      labelNames: ['source', 'line', 'class', 'direction'],
      registers,
    });
    const trackingsNow = () => this.trackings;
    new Gauge({
      name: 'visionpipe_tracked_objects',
      help: 'Objects followed now (confirmed tracks, seen or briefly lost), by source',
      labelNames: ['source'],
      registers,
      collect() {
        for (const [source, t] of trackingsNow()) this.set({ source }, t.activeObjects);
      },
    });
    new Gauge({
      name: 'visionpipe_zone_occupancy',
      help: 'Objects inside each zone now',
      labelNames: ['source', 'zone'],
      registers,
      collect() {
        for (const [source, t] of trackingsNow()) for (const z of t.zoneOccupancy()) this.set({ source, zone: z.zone }, z.total);
      },
    });
  }

  /**
   * The delivery output whose numbers are read at each scrape: events delivered and failed per target, outbox depth
   * and the age of the oldest undelivered event, events the outbox's bounds dropped, and delivery latency.
   */
  trackDelivery(sink: DeliverySink): void {
    this.delivery = sink;
    const registers = [this.registry];
    const stats = () => this.delivery?.stats() ?? [];
    cumulativeCounter(
      {
        name: 'visionpipe_delivery_events_total',
        help: 'Events per delivery target: delivered, or failed (an attempt retried, or an event the target refused for good)',
        labelNames: ['target', 'result'],
        registers,
      },
      () => stats().flatMap((s) => [[{ target: s.target, result: 'delivered' }, s.delivered] as const, [{ target: s.target, result: 'failed' }, s.failed] as const]),
    );
    new Gauge({ name: 'visionpipe_delivery_outbox_depth', help: 'Events in the outbox not yet delivered to each target', labelNames: ['target'], registers, collect() {
      for (const s of stats()) this.set({ target: s.target }, s.depth);
    } });
    new Gauge({ name: 'visionpipe_delivery_oldest_undelivered_seconds', help: 'Age of the oldest event not yet delivered to each target (0 when up to date)', labelNames: ['target'], registers, collect() {
      for (const s of stats()) this.set({ target: s.target }, s.oldestUndeliveredS);
    } });
    const dropped = () => this.delivery?.droppedUndelivered ?? 0;
    new Gauge({ name: 'visionpipe_delivery_dropped_events', help: 'Events the outbox bounds (maxBytes, maxAgeSeconds) dropped before every target had them', registers, collect() {
      this.set(dropped());
    } });
    const latency = new Histogram({ name: 'visionpipe_delivery_latency_seconds', help: 'Event appended to the outbox → acknowledged by the target', labelNames: ['target'], buckets: LATENCY_BUCKETS_S, registers });
    sink.onDelivered((target, ms) => latency.observe({ target }, ms / 1000));
  }

  /** The tracked sources whose live numbers (objects followed, zone occupancy) are read at each scrape. */
  trackTracking(trackings: ReadonlyMap<string, SourceTracking>): void {
    this.trackings = trackings;
  }

  onObjectEvent(e: ObjectEvent): void {
    this.objectEvents.inc({ source: e.source, type: e.type });
    if (e.type === 'line.cross') this.lineCrossings.inc({ source: e.source, line: e.line, class: e.label ?? String(e.classId), direction: e.direction });
  }

  /** Listens on host:port (0 = any free port). Resolves once listening; a port in use is a clear error. */
  static async start(host: string, port: number, sources: readonly FrameSource[]): Promise<MetricsServer> {
    // The handler needs the instance, which needs the listening server's address: filled in below.
    const ready: { metrics?: MetricsServer } = {};
    const server = createServer((req, res) => {
      const metrics = ready.metrics;
      if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?')) && metrics !== undefined) {
        metrics.registry
          .metrics()
          .then((body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body))
          .catch((err: unknown) => res.writeHead(500).end(String(err)));
      } else res.writeHead(404, { 'content-type': 'text/plain' }).end('visionpipe: metrics are at /metrics\n');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (cause: NodeJS.ErrnoException) =>
        reject(
          new VisionpipeError('VP_CONFIG_INVALID', `Cannot serve metrics on ${host}:${port} (${cause.code ?? cause.message})`, {
            value: port,
            hint: 'Choose another metrics.port (--metrics-port), or 0 for any free port.',
            cause,
          }),
        ),
      );
      server.listen(port, host, () => resolve());
    });
    const address = server.address() as AddressInfo;
    const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    ready.metrics = new MetricsServer(server, `http://${shownHost}:${address.port}/metrics`, sources);
    return ready.metrics;
  }

  onPrediction(p: Prediction): void {
    this.predictions.inc({ source: p.sourceId });
    this.latency.observe({ source: p.sourceId }, p.latencyMs / 1000);
    for (const [stage, ms] of Object.entries(p.timingsMs)) this.stage.observe({ stage }, ms / 1000);
  }

  onWrite(writeMs: number): void {
    this.stage.observe({ stage: 'write' }, writeMs / 1000);
  }

  onState(event: Pick<SourceStateEvent, 'source' | 'state'>): void {
    for (const state of STATES) this.state.set({ source: event.source, state }, state === event.state ? 1 : 0);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A counter whose totals are kept elsewhere (a source's drop counts, a target's deliveries): at each scrape it
 * reads them and adds what each label set gained since the last one.
 */
function cumulativeCounter<L extends string>(
  config: { name: string; help: string; labelNames: readonly L[]; registers: Registry[] },
  totals: () => ReadonlyArray<readonly [Record<L, string>, number]>,
): Counter<L> {
  const seen = new Map<string, number>();
  return new Counter<L>({
    ...config,
    collect() {
      for (const [labels, total] of totals()) {
        const key = JSON.stringify(labels);
        this.inc(labels, total - (seen.get(key) ?? 0));
        seen.set(key, total);
      }
    },
  });
}
