import { join } from 'node:path';
import { parseConfig } from '../config/load-config.js';
import type { Logger } from '../log.js';
import { createPipeline, type Pipeline } from '../pipeline/create-pipeline.js';
import type { DesiredCamera } from './job-schemas.js';

/** Why a worker stopped a camera it runs. */
export type CameraStopReason =
  /** `cluster apply` removed or changed it: its job completes (a changed camera has a new job). */
  | 'undesired'
  /** SIGTERM: the job goes back to waiting, another worker takes it at once. */
  | 'drain'
  /** BullMQ could not renew its lock (another worker may have it now). */
  | 'lock-lost'
  /** Redis unreachable for longer than the lock lives: another worker may take it once Redis is back. */
  | 'redis-lost';

/**
 * One camera a worker runs: its pipeline (the same as `visionpipe run` on that camera), its current state and
 * predictions, and a stop() that ends it cleanly (outputs finalised) for a stated reason.
 */
export class CameraRun {
  state = 'starting';
  predictions = 0;
  stopReason: CameraStopReason | null = null;
  #pipeline: Pipeline | null = null;

  constructor(
    readonly camera: DesiredCamera,
    readonly jobId: string,
  ) {}

  stop(reason: CameraStopReason): void {
    if (this.stopReason !== null) return;
    this.stopReason = reason;
    this.#pipeline?.stop();
  }

  /**
   * Opens and runs the camera until stop() or until its pipeline ends by itself (a source that gave up). Resolves
   * when every output is finalised; rejects only when the pipeline failed without stop().
   */
  async run(options: { workerId: string; stateDir: string; log: Logger }): Promise<void> {
    const config = parseConfig(cameraRunConfig(this.camera, options.workerId, options.stateDir), `camera "${this.camera.id}"`);
    const pipeline = await createPipeline(config, { logger: options.log });
    this.#pipeline = pipeline;
    pipeline.states$.subscribe((e) => (this.state = e.state));
    pipeline.predictions$.subscribe({ next: () => this.predictions++, error: () => undefined });
    if (this.stopReason !== null) pipeline.stop();
    try {
      await pipeline.run();
    } catch (err) {
      if (this.stopReason === null) throw err;
    } finally {
      this.state = 'stopped';
    }
  }
}

/**
 * The run config a worker uses for a desired camera: the applied one, with what must differ per worker: its own
 * outbox folder (one writer per outbox), no metrics or live-page port of its own (the worker serves metrics).
 */
export function cameraRunConfig(camera: DesiredCamera, workerId: string, stateDir: string): Record<string, unknown> {
  const delivery = (camera.config['delivery'] ?? {}) as Record<string, unknown>;
  const outbox = (delivery['outbox'] ?? {}) as Record<string, unknown>;
  return {
    ...camera.config,
    delivery: { ...delivery, outbox: { ...outbox, dir: join(stateDir, 'outbox', camera.id) } },
    metrics: { port: null },
    ui: { ...((camera.config['ui'] ?? {}) as Record<string, unknown>), port: null },
    log: { level: (camera.config['log'] as { level?: string } | undefined)?.level ?? 'info' },
  };
}
