import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { VisionpipeError } from '../errors.js';
import type { ClusterClient, ClusterStatus } from './cluster-client.js';
import type { ClusterWorker } from './cluster-worker.js';

/** Cluster gauges of one scrape share one status read. */
const SCRAPE_CACHE_MS = 500;

/**
 * A worker's Prometheus endpoint (`visionpipe worker --metrics-port`): its own capacity used, cameras and file
 * jobs, and — read from Redis at each scrape — the cluster's backlog, oldest waiting job and camera hand-overs
 * (every worker reports the same cluster numbers; a dashboard takes max() over workers). The caller closes it.
 */
export class ClusterMetricsServer {
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(host: string, port: number, worker: ClusterWorker, client: ClusterClient): Promise<ClusterMetricsServer> {
    const registry = new Registry();
    const registers = [registry];
    const labels = { worker: worker.options.id };
    collectDefaultMetrics({ register: registry, prefix: 'visionpipe_process_' });
    const gauge = (name: string, help: string, value: () => number) =>
      new Gauge({ name, help, labelNames: ['worker'], registers, collect() { this.set(labels, value()); } });
    gauge('visionpipe_worker_capacity', 'This worker\'s camera capacity (cameras, or fps under --capacity-fps)', () => worker.capacity.spec.total);
    gauge('visionpipe_worker_capacity_used', 'Camera capacity in use on this worker (same unit as visionpipe_worker_capacity)', () => worker.capacity.used);
    gauge('visionpipe_worker_cameras_running', 'Cameras this worker runs', () => worker.cameras.size);
    gauge('visionpipe_worker_file_jobs_running', 'File jobs this worker runs', () => worker.files.size);
    gauge('visionpipe_worker_file_jobs_done', 'File jobs this worker finished since it started', () => worker.filesDone);
    gauge('visionpipe_worker_file_jobs_failed', 'File jobs that failed on this worker since it started', () => worker.filesFailed);
    gauge('visionpipe_worker_camera_handovers_taken', 'Cameras this worker took over from another worker (death or drain)', () => worker.handoversTaken);
    // One Redis read per scrape serves every cluster gauge (each collects on its own); a Redis outage leaves the
    // last values.
    let scrape: { atMs: number; status: Promise<ClusterStatus | null> } | null = null;
    let last: ClusterStatus | null = null;
    const status = async (): Promise<ClusterStatus | null> => {
      if (scrape === null || Date.now() - scrape.atMs > SCRAPE_CACHE_MS) {
        scrape = { atMs: Date.now(), status: client.status().then((s) => (last = s), () => last) };
      }
      return scrape.status;
    };
    const clusterGauge = (name: string, help: string, value: (s: ClusterStatus) => number) =>
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          const s = await status();
          if (s !== null) this.set(value(s));
        },
      });
    clusterGauge('visionpipe_cluster_backlog_jobs', 'File jobs waiting (incl. delayed retries)', (s) => s.files.waiting + s.files.delayed);
    clusterGauge('visionpipe_cluster_oldest_job_age_seconds', 'Age of the oldest waiting file job (0 when none)', (s) => (s.files.oldestWaitingAgeMs ?? 0) / 1000);
    clusterGauge('visionpipe_cluster_camera_handovers', 'Camera jobs started on a worker after running on another (since the Redis was created)', (s) => s.cameraHandovers);
    clusterGauge('visionpipe_cluster_workers_alive', 'Workers heard from in the last 10 s', (s) => s.workers.filter((w) => w.alive).length);
    clusterGauge('visionpipe_cluster_cameras_unassigned', 'Desired cameras no live worker runs', (s) => s.cameras.filter((c) => c.worker === null).length);
    const server = createServer((req, res) => {
      if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?') === true)) {
        registry
          .metrics()
          .then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body))
          .catch((err: unknown) => res.writeHead(500).end(String(err)));
      } else res.writeHead(404, { 'content-type': 'text/plain' }).end('visionpipe: metrics are at /metrics\n');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (cause: NodeJS.ErrnoException) =>
        reject(new VisionpipeError('VP_CONFIG_INVALID', `Cannot serve metrics on ${host}:${port} (${cause.code ?? cause.message})`, { value: port, hint: 'Choose another --metrics-port, or 0 for any free port.', cause })),
      );
      server.listen(port, host, () => resolve());
    });
    const address = server.address() as AddressInfo;
    return new ClusterMetricsServer(server, `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}/metrics`);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
