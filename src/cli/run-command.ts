import cliProgress from 'cli-progress';
import { loadConfig, type ConfigOverrides } from '../config/load-config.js';
import { createLogger } from '../log.js';
import { createPipeline } from '../pipeline/create-pipeline.js';
import { formatSummary } from './format-summary.js';
import { reportError } from './report-error.js';

export interface RunFlags {
  model?: string;
  engine?: string;
  output?: string;
  events?: string;
  config?: string;
  maxFrames?: number;
  ringSize?: number;
  metricsPort?: number;
  logLevel?: string;
  jsonLogs?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

/** `visionpipe run <source>`; returns the exit code. */
export async function runCommand(sources: string[], flags: RunFlags): Promise<number> {
  const verbose = flags.verbose === true;
  try {
    const overrides = {
      model: flags.model,
      engine: flags.engine,
      output: { video: flags.output, events: flags.events },
      pipeline: { ringSize: flags.ringSize },
      metrics: { port: flags.metricsPort },
      log: { level: verbose ? 'debug' : flags.logLevel },
    } as ConfigOverrides;
    const config = loadConfig({ file: flags.config, overrides, sourceUris: sources, maxFrames: flags.maxFrames });
    const log = createLogger(config.log.level, flags.jsonLogs === true ? { json: true } : {});
    const pipeline = await createPipeline(config, { logger: log });

    let interrupted = 0;
    const onSigint = () => {
      interrupted++;
      if (interrupted > 1) process.exit(130);
      log.warn('interrupted: finishing frames in flight and closing outputs (Ctrl-C again to quit at once)');
      pipeline.stop();
    };
    process.on('SIGINT', onSigint);

    const [first] = pipeline.sources;
    const total = pipeline.sources.length === 1 ? (config.source[0]?.maxFrames ?? first?.info.frameCount ?? null) : null;
    const showBar = flags.quiet !== true && process.stderr.isTTY && total !== null;
    const bar = new cliProgress.SingleBar(
      { format: ' {bar} {value}/{total} frames | {fps} fps | ETA {eta_formatted}', stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    if (showBar) bar.start(total ?? 0, 0, { fps: '0.0' });
    const startMs = performance.now();
    let done = 0;
    pipeline.predictions$.subscribe({
      next: () => {
        done++;
        const fps = (done * 1000) / Math.max(1, performance.now() - startMs);
        if (showBar) bar.update(done, { fps: fps.toFixed(1) });
      },
      error: () => undefined,
    });
    try {
      const summary = await pipeline.run();
      if (showBar) bar.stop();
      process.stdout.write(`${formatSummary(summary)}\n`);
      return summary.stoppedEarly ? 130 : 0;
    } finally {
      if (showBar) bar.stop();
      process.off('SIGINT', onSigint);
    }
  } catch (err) {
    return reportError(err, verbose);
  }
}
