import type { Observable } from 'rxjs';
import { parseConfig } from '../config/load-config.js';
import type { Config, ConfigInput, OnnxOptions } from '../config/schema.js';
import { messageOf, VisionpipeError } from '../errors.js';
import type { InferenceHost } from '../inference/inference-host.js';
import { OpenCvDnnHost } from '../inference/opencv-host.js';
import { InferenceWorkerHost, type BatchOptions } from '../inference/worker-host.js';
import { InferencePool } from '../inference/inference-pool.js';
import { silentLogger, type Logger } from '../log.js';
import { MetricsServer } from '../metrics/prometheus.js';
import { LiveView } from '../ui/live-view.js';
import { UiServer, checkUiExposure } from '../ui/ui-server.js';
import type { RunSummary } from '../metrics/run-stats.js';
import { asBatchedModel, asOnnxDescriptor, asPixelInputDescriptor } from '../models/convert-model.js';
import type { ModelDescriptor } from '../models/descriptor-schema.js';
import { loadModelDescriptor } from '../models/load-descriptor.js';
import { inputDims, preprocessSpecOf } from '../preprocess/preprocess-frame.js';
import { locateFfmpeg } from '../process/ffmpeg-path.js';
import { prepareOutputPath } from '../sinks/output-path.js';
import type { Sink } from '../sinks/sink.js';
import type { FrameSource } from '../sources/frame-source.js';
import { openSources } from '../sources/open-source.js';
import type { SourceStateEvent } from '../sources/source-state.js';
import { checkEngineFormat, checkModelInput, checkTracking } from './check-model-input.js';
import type { AnnotatedFrame, Prediction } from './frame.js';
import type { ObjectEvent } from '../tracking/object-events.js';
import { prepareOutputDir } from '../sinks/output-path.js';
import { outboxHolder } from '../delivery/outbox.js';
import { RunnablePipeline } from './runnable-pipeline.js';

/** Parts a caller (a test, an embedding program) provides instead of the ones the config would make. */
export interface PipelineInjections {
  /** Used instead of opening `config.source` (the config must still list as many sources). Closed by the pipeline. */
  sources?: FrameSource[];
  /** Used instead of starting the model's worker. Closed by the pipeline. */
  host?: InferenceHost;
  /** Written to after the configured outputs, and closed (or aborted) with them. */
  sinks?: Sink[];
}

export interface PipelineOptions {
  logger?: Logger;
  inject?: PipelineInjections;
}

/**
 * A ready-to-run pipeline: source opened, model loaded in its worker, outputs checked. Subscribe to
 * `predictions$` / `frames$` (or iterate `predictions()`) before calling `run()`.
 */
export interface Pipeline {
  readonly config: Config;
  readonly descriptor: ModelDescriptor;
  /** The opened sources, in config order (ids are unique and free of credentials). */
  readonly sources: readonly FrameSource[];
  /** e.g. `tfjs 4.22.0 (wasm)`. */
  readonly engine: string;
  /** One event per frame, in frame order per source, once the frame is annotated. Completes or errors with run(). */
  readonly predictions$: Observable<Prediction>;
  /** Annotated frames; `frame.mat` is valid only during the emission (it is released after the sinks). */
  readonly frames$: Observable<AnnotatedFrame>;
  /** The Prometheus endpoint (`metrics.port` set), e.g. http://127.0.0.1:9464/metrics; null when off. */
  readonly metricsUrl: string | null;
  /** The live page (`ui.port` set), e.g. http://127.0.0.1:8080/; null when off. */
  readonly uiUrl: string | null;
  /** This run's id: the prefix of its object events' ids and of its snapshot file names. */
  readonly runId: string;
  /**
   * Object events of tracked sources (object.start / update / end, zone.enter / exit / dwell, line.cross; see
   * ObjectEvent), in the order they were decided; each also goes to events$ and the events file.
   */
  readonly objectEvents$: Observable<ObjectEvent>;
  /** Live sources' state changes: connecting, live, stalled, backoff, failed, stopped. */
  readonly states$: Observable<SourceStateEvent>;
  /**
   * Everything the events file gets, on one stream: predictions (as their JSON event form), state changes,
   * `frame-error` (a frame whose inference failed) and `source-end` (a file that ended early).
   */
  readonly events$: Observable<Record<string, unknown>>;
  /**
   * Runs to the end of the sources (or stop()); resolves with the summary once every output is finalised. When
   * it rejects, every output was still closed, the error has a `VP_` code and names what was kept, and
   * `error.summary` holds the run's numbers.
   */
  run(): Promise<RunSummary>;
  /** Stops reading (live sources disconnect); frames already read finish and outputs are finalised normally. */
  stop(): void;
  /**
   * Predictions as an async iterable. Holds at most `maxBuffered` (default 1024) predictions the consumer has not
   * taken yet, dropping the oldest beyond that (counted in `dropped`); stops listening when the loop ends. Call
   * before run().
   */
  predictions(options?: { maxBuffered?: number }): AsyncIterable<Prediction> & { readonly dropped: number };
  /** Object events as an async iterable, bounded like predictions(). Call before run(). */
  objectEvents(options?: { maxBuffered?: number }): AsyncIterable<ObjectEvent> & { readonly dropped: number };
  /** Releases the worker and the source without running (run() releases them itself). */
  close(): Promise<void>;
}

/** The model with a pixel prologue, or as it is (logged) when it cannot take one. */
export async function pixelInputOrFloat(d: ModelDescriptor, log: Logger): Promise<ModelDescriptor> {
  try {
    const pixels = await asPixelInputDescriptor(d);
    if (pixels !== d) log.debug({ model: pixels.modelPath }, 'the model takes uint8 pixels (prologue in the graph)');
    return pixels;
  } catch (err) {
    log.info({ reason: messageOf(err) }, 'the model keeps its float input (no pixel prologue)');
    return d;
  }
}

/** Validates the config, opens the source, checks the outputs, and loads the model in the inference worker. */
export async function createPipeline(input: ConfigInput | Config, options: PipelineOptions = {}): Promise<Pipeline> {
  const log = options.logger ?? silentLogger;
  const inject = options.inject ?? {};
  const config = Object.isFrozen(input) ? (input as Config) : parseConfig(input);
  const declared = loadModelDescriptor(config.model);
  const engine = config.engine === 'auto' ? declared.engine : config.engine;
  checkEngineFormat(engine, declared);
  // A TF.js graph model on the onnx or opencv engine is converted once (and cached) by visionpipe's own importer.
  const converted = engine === 'tfjs' || inject.host !== undefined ? declared : await asOnnxDescriptor(declared);
  let descriptor = engine === 'onnx' && config.pipeline.pixelsInModel && inject.host === undefined ? await pixelInputOrFloat(converted, log) : converted;
  const videoPath = config.output.video === null ? null : prepareOutputPath(config.output.video, 'video output');
  if (videoPath !== null && config.source.length > 1 && !videoPath.includes('{source}')) {
    throw new VisionpipeError('VP_CONFIG_INVALID', 'With several sources, output.video must name one file per source', {
      value: config.output.video,
      expected: 'a path containing {source}, e.g. out/{source}.mp4',
    });
  }
  const eventsPath = config.output.events === null ? null : prepareOutputPath(config.output.events, 'events output');
  checkTracking(config, declared);
  const snapshotsDir = config.output.snapshots === null ? null : prepareOutputDir(config.output.snapshots, 'snapshots');
  const clipsDir = config.output.clips === null ? null : prepareOutputDir(config.output.clips, 'clips');
  if (config.delivery.mqtt !== null || config.delivery.webhooks.length > 0) {
    const outboxDir = prepareOutputDir(config.delivery.outbox.dir, 'outbox (delivery.outbox.dir)');
    const holder = outboxHolder(outboxDir);
    if (holder !== null) {
      throw new VisionpipeError('VP_OUTPUT_UNWRITABLE', `The outbox folder is in use by another visionpipe (process ${holder})`, {
        value: config.delivery.outbox.dir,
        expected: 'an outbox folder no other running visionpipe uses',
        hint: 'Give each visionpipe its own delivery.outbox.dir (two writers would corrupt it).',
      });
    }
  }
  const uiToken = config.ui.port === null ? null : (config.ui.token ?? uiTokenFromEnv());
  if (config.ui.port !== null) checkUiExposure(config.ui.host, uiToken);
  const ffmpeg = videoPath === null && clipsDir === null ? null : locateFfmpeg();
  if (ffmpeg !== null) log.info({ ffmpeg: ffmpeg.path, via: ffmpeg.via }, 'ffmpeg found');

  const sources = inject.sources ?? (await openSources(config.source));
  for (const s of sources) log.info({ source: s.info }, 'source opened');
  let host: InferenceHost | undefined = inject.host;
  let maxBatch = 1;
  let workerCount = 1;
  let metrics: MetricsServer | null = null;
  let ui: { view: LiveView; server: UiServer } | null = null;
  try {
    if (host === undefined && engine === 'opencv') host = await OpenCvDnnHost.start(descriptor);
    else if (host === undefined) {
      const wanted = engine === 'onnx' ? Math.min(config.pipeline.maxBatch, sources.length) : 1;
      const count = engine === 'onnx' ? config.onnx.workers : 1;
      // Several workers share the cores: one onnxruntime thread each unless set.
      const onnx = count > 1 && config.onnx.intraOpThreads === null ? { ...config.onnx, intraOpThreads: 1 } : config.onnx;
      const startAll = async (d: ModelDescriptor) => {
        const batch = await batchedModel(d, wanted, onnx, config.pipeline.batchChoice, log);
        const started = await Promise.allSettled(Array.from({ length: count }, () => InferenceWorkerHost.start(d, engine === 'opencv' ? 'onnx' : engine, onnx, batch)));
        const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed === undefined) return started.map((r) => (r as PromiseFulfilledResult<InferenceWorkerHost>).value);
        await Promise.allSettled(started.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
        throw failed.reason;
      };
      let workers: InferenceWorkerHost[];
      try {
        workers = await startAll(descriptor);
      } catch (err) {
        // The rewritten model did not load (something the graph writer does not carry over): the float input it is.
        if (descriptor === converted) throw err;
        log.info({ reason: messageOf(err) }, 'the model with a pixel prologue did not load; it keeps its float input');
        descriptor = converted;
        workers = await startAll(descriptor);
      }
      const first = workers[0]!;
      if (first.batchRefused !== null) log.info({ reason: first.batchRefused }, 'frames run one at a time (no batching)');
      maxBatch = Math.min(...workers.map((w) => w.maxBatch));
      workerCount = workers.length;
      if (workers.length > 1) log.info({ workers: workers.length, intraOpThreads: onnx.intraOpThreads }, 'inference runs in several workers');
      host = workers.length === 1 ? first : new InferencePool(workers);
    }
    if (inject.host === undefined) checkModelInput(host.info, descriptor, inputDims(preprocessSpecOf(descriptor)));
    if (config.metrics.port !== null) metrics = await MetricsServer.start(config.metrics.host, config.metrics.port, sources);
    if (config.ui.port !== null) {
      const view = new LiveView(sources, config.ui);
      const fileRoots = [snapshotsDir, clipsDir].filter((d): d is string => d !== null);
      ui = { view, server: await UiServer.start(view, { host: config.ui.host, port: config.ui.port, token: uiToken, fileRoots, log }) };
    }
  } catch (err) {
    await Promise.allSettled(sources.map((s) => s.close()));
    await Promise.allSettled([metrics?.close(), ui?.server.close()]);
    await host?.close();
    throw err;
  }
  log.info({ model: descriptor.name, engine: host.info.backend }, 'model loaded');
  if (metrics !== null) log.info({ url: metrics.url }, 'Prometheus metrics served');
  if (ui !== null) log.info({ url: ui.server.url }, 'live page served');
  return new RunnablePipeline({
    config,
    descriptor,
    sources,
    host,
    metrics,
    ui: ui?.server ?? null,
    outputs: { videoPath, eventsPath, ffmpegPath: ffmpeg?.path ?? null, snapshotsDir, clipsDir },
    maxBatch,
    workers: workerCount,
    extraSinks: [...(ui === null ? [] : [ui.view]), ...(inject.sinks ?? [])],
    log,
  });
}

/**
 * Batching for `maxBatch` > 1 (several sources on the onnx engine): the model rewritten to take a batch (made once,
 * checked against batch 1, timed on this machine, cached), or undefined — logged — when it cannot take one or when
 * batching made no image cheaper here: frames then run one at a time.
 */
async function batchedModel(d: ModelDescriptor, maxBatch: number, onnx: OnnxOptions, choice: 'measured' | 'always', log: Logger): Promise<BatchOptions | undefined> {
  if (maxBatch <= 1 || d.format !== 'onnx') return undefined;
  try {
    const batched = await asBatchedModel(d, maxBatch, onnx);
    const fields = { perImageMs: batched.perImageMs, perImageNodes: batched.plan.perImageNodes, firstPerImage: batched.plan.firstPerImage };
    const use = choice === 'always' ? maxBatch : batched.maxBatch;
    if (use <= 1) {
      log.info(fields, 'frames run one at a time (batching made no image cheaper on this machine)');
      return undefined;
    }
    log.info({ ...fields, maxBatch: use }, 'frames of several sources run in batches');
    return { modelPath: batched.modelPath, maxBatch: use };
  } catch (err) {
    log.info({ reason: messageOf(err) }, 'frames run one at a time (the model cannot take a batch)');
    return undefined;
  }
}

/** VISIONPIPE_UI_TOKEN, checked like ui.token (a short one is refused, not silently used). */
function uiTokenFromEnv(): string | null {
  const token = process.env['VISIONPIPE_UI_TOKEN'];
  if (token === undefined || token === '') return null;
  if (token.length < 16) {
    throw new VisionpipeError('VP_CONFIG_INVALID', 'VISIONPIPE_UI_TOKEN is too short', {
      value: `${token.length} characters`,
      expected: 'at least 16 characters (e.g. `openssl rand -hex 16`)',
    });
  }
  return token;
}
