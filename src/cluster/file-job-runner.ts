import { rmSync } from 'node:fs';
import { parseConfig } from '../config/load-config.js';
import type { Logger } from '../log.js';
import { createPipeline, type Pipeline } from '../pipeline/create-pipeline.js';
import { attemptPath, publishOutput, removeStaleAttempts } from './atomic-output.js';
import type { FileJob, FileJobResult } from './job-schemas.js';

/**
 * One file job on one worker: the same pipeline as `visionpipe run` on the clip, writing each output under an
 * attempt name in the output's folder, renamed to the final name only once the run finished and finalised it.
 */
export class FileJobRun {
  #pipeline: Pipeline | null = null;
  /** Set by stop(): the run ended early, its outputs are discarded and the job goes back to the queue. */
  stopped = false;

  constructor(
    readonly jobId: string,
    readonly job: FileJob,
    /** BullMQ's attemptsStarted: 1 the first time, more when an earlier worker died or handed it back. */
    readonly attempt: number,
  ) {}

  stop(): void {
    this.stopped = true;
    this.#pipeline?.stop();
  }

  async run(options: { workerId: string; log: Logger }): Promise<FileJobResult> {
    const finals = { video: this.job.video, events: this.job.events };
    const temps = {
      video: finals.video === null ? null : attemptPath(finals.video, this.jobId, this.attempt, options.workerId),
      events: finals.events === null ? null : attemptPath(finals.events, this.jobId, this.attempt, options.workerId),
    };
    // What an earlier attempt of this job left (a worker killed mid-write) goes first.
    for (const key of ['video', 'events'] as const) {
      const final = finals[key];
      if (final === null) continue;
      const removed = removeStaleAttempts(final, this.jobId, temps[key]);
      if (removed.length > 0) options.log.info({ removed }, 'removed what an earlier attempt of this job left');
    }
    const discardTemps = () => {
      for (const t of [temps.video, temps.events]) if (t !== null) for (const p of [t, `${t}.partial`]) rmSync(p, { force: true });
    };
    try {
      const t0 = performance.now();
      const config = parseConfig(
        {
          source: { uri: this.job.clip, kind: 'file', maxFrames: this.job.maxFrames },
          model: this.job.model,
          engine: this.job.engine,
          output: { video: temps.video, events: temps.events },
        },
        `file job ${this.jobId}`,
      );
      const pipeline = await createPipeline(config, { logger: options.log });
      this.#pipeline = pipeline;
      if (this.stopped) pipeline.stop();
      const t1 = performance.now();
      const summary = await pipeline.run();
      const t2 = performance.now();
      if (this.stopped) {
        discardTemps();
        return { worker: options.workerId, frames: summary.frames, setupMs: t1 - t0, runMs: t2 - t1, outputs: [] };
      }
      const outputs: string[] = [];
      for (const key of ['video', 'events'] as const) {
        const temp = temps[key];
        const final = finals[key];
        if (temp === null || final === null) continue;
        publishOutput(temp, final);
        outputs.push(final);
      }
      return { worker: options.workerId, frames: summary.frames, setupMs: t1 - t0, runMs: t2 - t1, outputs };
    } catch (err) {
      discardTemps();
      throw err;
    }
  }
}
