import cliProgress from 'cli-progress';
import { loadConfig, type ConfigOverrides } from '../config/load-config.js';
import { createLogger } from '../log.js';
import { createPipeline } from '../pipeline/create-pipeline.js';
import { exitCodeOf, quitAtOnce } from '../process/quit-at-once.js';
import type { RunSummary } from '../metrics/run-stats.js';
import { VisionpipeError } from '../errors.js';
import { formatSummary } from './format-summary.js';
import { reportError } from './report-error.js';

export interface RunFlags {
  model?: string;
  engine?: string;
  output?: string;
  events?: string;
  snapshots?: string;
  clips?: string;
  mqtt?: string;
  /** --ui: true (default port) or the port given. */
  ui?: boolean | number;
  /** false with --no-frame-events; commander sets true otherwise, which must not override the config file. */
  frameEvents?: boolean;
  config?: string;
  maxFrames?: number;
  ringSize?: number;
  metricsPort?: number;
  logLevel?: string;
  jsonLogs?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

/** `--ui` without a port. */
const DEFAULT_UI_PORT = 8080;

/** What systemd, Docker, a terminal (Ctrl-C) or a closed SSH session send to stop a run. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type StopSignal = (typeof STOP_SIGNALS)[number];

/**
 * Handles stop signals for the duration of a run. The first one calls `onFirst` (a clean stop), or, when that
 * returns false (nothing to finish yet), quits at once; any further signal quits at once: children killed, the
 * process ended by the first signal (a shell reports 128 + n; see quitAtOnce). Node's default for these signals
 * would kill visionpipe without running its 'exit' handlers, leaving outputs unfinished and children orphaned.
 */
function handleStopSignals(onFirst: (signal: StopSignal) => boolean): { readonly received: StopSignal | null; dispose(): void } {
  let received: StopSignal | null = null;
  const onSignal = (signal: StopSignal): void => {
    if (received !== null) {
      process.stderr.write(`visionpipe: ${signal} again: quitting at once (outputs not yet finalised stay as .partial)\n`);
      return quitAtOnce(received);
    }
    received = signal;
    if (!onFirst(signal)) quitAtOnce(signal);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  return {
    get received() {
      return received;
    },
    dispose: () => {
      for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
    },
  };
}

/** `visionpipe run <source>`; returns the exit code. */
export async function runCommand(sources: string[], flags: RunFlags): Promise<number> {
  const verbose = flags.verbose === true;
  let onStop = (signal: StopSignal): boolean => {
    // Still loading: nothing written yet, nothing to finish.
    process.stderr.write(`visionpipe: ${signal} before the run started: quitting\n`);
    return false;
  };
  const signals = handleStopSignals((signal) => onStop(signal));
  try {
    const overrides = {
      model: flags.model,
      engine: flags.engine,
      output: { video: flags.output, events: flags.events, snapshots: flags.snapshots, clips: flags.clips, frameEvents: flags.frameEvents === false ? false : undefined },
      pipeline: { ringSize: flags.ringSize },
      metrics: { port: flags.metricsPort },
      ui: flags.ui === undefined ? undefined : { port: flags.ui === true ? DEFAULT_UI_PORT : flags.ui },
      delivery: flags.mqtt === undefined ? undefined : { mqtt: { url: flags.mqtt } },
      log: { level: verbose ? 'debug' : flags.logLevel },
    } as ConfigOverrides;
    if (sources.length === 0 && flags.config === undefined) {
      throw new VisionpipeError('VP_CONFIG_INVALID', 'No source to run', { expected: 'a video file, an rtsp:// URL or a camera after `run`, or a --config file that lists sources' });
    }
    const config = loadConfig({ file: flags.config, overrides, sourceUris: sources.length > 0 ? sources : undefined, maxFrames: flags.maxFrames });
    const log = createLogger(config.log.level, flags.jsonLogs === true ? { json: true } : {});
    const running = await createPipeline(config, { logger: log });

    const [first] = running.sources;
    const total = running.sources.length === 1 ? (config.source[0]?.maxFrames ?? first?.info.frameCount ?? null) : null;
    const showBar = flags.quiet !== true && process.stderr.isTTY && total !== null;
    const bar = new cliProgress.SingleBar(
      { format: ' {bar} {value}/{total} frames | {fps} fps | ETA {eta_formatted}', stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    onStop = (signal) => {
      if (showBar) bar.stop(); // so the warning is not drawn over
      const again = signal === 'SIGINT' ? 'Ctrl-C' : signal;
      log.warn(`${signal}: finishing frames in flight and closing outputs (${again} again to quit at once)`);
      running.stop();
      return true;
    };
    if (showBar) bar.start(total ?? 0, 0, { fps: '0.0' });
    const startMs = performance.now();
    let done = 0;
    running.predictions$.subscribe({
      next: () => {
        done++;
        const fps = (done * 1000) / Math.max(1, performance.now() - startMs);
        if (showBar) bar.update(done, { fps: fps.toFixed(1) });
      },
      error: () => undefined,
    });
    try {
      const summary = await running.run();
      if (showBar) bar.stop();
      process.stdout.write(`${formatSummary(summary)}\n`);
      return signals.received === null ? 0 : exitCodeOf(signals.received);
    } catch (err) {
      // A run that got going and then failed (a file cut short, every camera gone, an output that failed to close)
      // still has its numbers: print them before the error.
      const summary = (err as { summary?: RunSummary } | null)?.summary;
      if (showBar) bar.stop();
      if (summary !== undefined) process.stdout.write(`${formatSummary(summary)}\n`);
      throw err;
    } finally {
      if (showBar) bar.stop();
    }
  } catch (err) {
    // After a signal too: the error (it names what was kept) is the more useful report, and the code stays non-zero.
    return reportError(err, verbose);
  } finally {
    signals.dispose();
  }
}
