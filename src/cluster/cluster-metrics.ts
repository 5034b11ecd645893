import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { VisionpipeError } from '../errors.js';
import type { ClusterClient } from './cluster-client.js';
import type { ClusterWorker } from './cluster-worker.js';

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
    const cluster = new Gauge({ name: 'visionpipe_cluster_backlog_jobs', help: 'File jobs waiting (incl. delayed retries)', registers });
    const oldest = new Gauge({ name: 'visionpipe_cluster_oldest_job_age_seconds', help: 'Age of the oldest waiting file job (0 when none)', registers });
    const handovers = new Gauge({ name: 'visionpipe_cluster_camera_handovers', help: 'Camera jobs started on a worker after running on another, since the Redis was created', registers });
    const alive = new Gauge({ name: 'visionpipe_cluster_workers_alive', help: 'Workers heard from in the last 10 s', registers });
    const waitingCameras = new Gauge({
      name: 'visionpipe_cluster_cameras_unassigned',
      help: 'Desired cameras no live worker runs',
      registers,
      async collect() {
        // One Redis read per scrape for all the cluster gauges; a Redis outage leaves the last values.
        try {
          const s = await client.status();
          cluster.set(s.files.waiting + s.files.delayed);
          oldest.set((s.files.oldestWaitingAgeMs ?? 0) / 1000);
          handovers.set(s.cameraHandovers);
          alive.set(s.workers.filter((w) => w.alive).length);
          this.set(s.cameras.filter((c) => c.worker === null).length);
        } catch {
          // keep the last values
        }
      },
    });
    void waitingCameras;
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
