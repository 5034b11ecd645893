import { Subject, defaultIfEmpty, finalize, lastValueFrom, merge, tap, type Observable } from 'rxjs';
import { ResultAnnotator } from '../annotate/result-annotator.js';
import { parseConfig } from '../config/load-config.js';
import type { Config, ConfigInput } from '../config/schema.js';
import { OpenCvDnnHost } from '../inference/opencv-host.js';
import { InferenceWorkerHost } from '../inference/worker-host.js';

/** Where inference runs: the worker thread (onnxruntime, TF.js) or OpenCV DNN on the main thread's libuv pool. */
type InferenceHost = Pick<InferenceWorkerHost, 'run' | 'info' | 'close'>;
import { silentLogger, type Logger } from '../log.js';
import { FpsMeter } from '../metrics/fps-meter.js';
import { MetricsServer } from '../metrics/prometheus.js';
import { RunStats, type RunSummary } from '../metrics/run-stats.js';
import type { ModelDescriptor } from '../models/descriptor-schema.js';
import { asOnnxDescriptor } from '../models/convert-model.js';
import { loadModelDescriptor } from '../models/load-descriptor.js';
import { createDecoder } from '../postprocess/decode-output.js';
import { inputByteLength, inputDims, preprocessSpecOf } from '../preprocess/preprocess-frame.js';
import { VisionpipeError } from '../errors.js';
import { locateFfmpeg } from '../sinks/ffmpeg-path.js';
import { JsonlSink } from '../sinks/jsonl-sink.js';
import { prepareOutputPath } from '../sinks/output-path.js';
import { RoutedVideoSink } from '../sinks/routed-video-sink.js';
import type { Sink } from '../sinks/sink.js';
import type { FrameSource } from '../sources/frame-source.js';
import { openSources } from '../sources/open-source.js';
import type { SourceStateEvent } from '../sources/source-state.js';
import { toAsyncIterable } from './async-queue.js';
import { checkEngineFormat, checkModelInput } from './check-model-input.js';
import { FrameRing } from './frame-ring.js';
import type { AnnotatedFrame, Frame, Prediction } from './frame.js';
import { toEventJson } from './prediction-event.js';
import type { DropReason } from '../sources/source-state.js';
import { annotateFrames } from './operators/annotate-frames.js';
import { decodeFrames } from './operators/decode-frames.js';
import { inferFrames } from './operators/infer-frames.js';
import { preprocessFrames } from './operators/preprocess-frames.js';
import { readFrames, type ReadControl } from './operators/read-frames.js';
import { writeFrames } from './operators/write-frames.js';
import { Permits } from './permits.js';

export interface PipelineOptions {
  logger?: Logger;
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
  /** One event per frame, in frame order, once the frame is annotated. */
  readonly predictions$: Observable<Prediction>;
  /** Annotated frames; `frame.mat` is valid only during the emission (it is released after the sinks). */
  readonly frames$: Observable<AnnotatedFrame>;
  /** The Prometheus endpoint (`metrics.port` set), e.g. http://127.0.0.1:9464/metrics; null when off. */
  readonly metricsUrl: string | null;
  /** Live sources' state changes: connecting, live, stalled, backoff, stopped. */
  readonly states$: Observable<SourceStateEvent>;
  /** Predictions (as their JSON event form) and state changes on one stream, as the events file has them. */
  readonly events$: Observable<Record<string, unknown>>;
  /** Runs to the end of the source (or stop()); resolves with the summary once every output is finalised. */
  run(): Promise<RunSummary>;
  /** Stops reading (live sources disconnect); frames already read finish and outputs are finalised normally. */
  stop(): void;
  /** Predictions as an async iterable (buffers what the consumer has not yet taken). Call before run(). */
  predictions(): AsyncIterable<Prediction>;
  /** Releases the worker and the source without running (run() releases them itself). */
  close(): Promise<void>;
}

/** Validates the config, opens the source, checks the outputs, and loads the model in the inference worker. */
export async function createPipeline(input: ConfigInput | Config, options: PipelineOptions = {}): Promise<Pipeline> {
  const log = options.logger ?? silentLogger;
  const config = Object.isFrozen(input) ? (input as Config) : parseConfig(input);
  const declared = loadModelDescriptor(config.model);
  const engine = config.engine === 'auto' ? declared.engine : config.engine;
  checkEngineFormat(engine, declared);
  // A TF.js graph model on the onnx or opencv engine is converted once (and cached) by visionpipe's own importer.
  const descriptor = engine === 'tfjs' ? declared : await asOnnxDescriptor(declared);
  const videoPath = config.output.video === null ? null : prepareOutputPath(config.output.video, 'video output');
  if (videoPath !== null && config.source.length > 1 && !videoPath.includes('{source}')) {
    throw new VisionpipeError('VP_CONFIG_INVALID', 'With several sources, output.video must name one file per source', {
      value: config.output.video,
      expected: 'a path containing {source}, e.g. out/{source}.mp4',
    });
  }
  const eventsPath = config.output.events === null ? null : prepareOutputPath(config.output.events, 'events output');
  const ffmpeg = videoPath === null ? null : locateFfmpeg();
  if (ffmpeg !== null) log.info({ ffmpeg: ffmpeg.path, via: ffmpeg.via }, 'ffmpeg found');

  const sources = await openSources(config.source);
  for (const s of sources) log.info({ source: s.info }, 'source opened');
  let host: InferenceHost | undefined;
  let metrics: MetricsServer | null = null;
  try {
    host = engine === 'opencv' ? await OpenCvDnnHost.start(descriptor) : await InferenceWorkerHost.start(descriptor, engine);
    checkModelInput(host.info, descriptor, inputDims(preprocessSpecOf(descriptor)));
    if (config.metrics.port !== null) metrics = await MetricsServer.start(config.metrics.host, config.metrics.port, sources);
  } catch (err) {
    await Promise.all(sources.map((s) => s.close()));
    await host?.close();
    throw err;
  }
  log.info({ model: descriptor.name, engine: host.info.backend }, 'model loaded');
  if (metrics !== null) log.info({ url: metrics.url }, 'Prometheus metrics served');
  return new RunnablePipeline(config, descriptor, sources, host, metrics, { videoPath, eventsPath, ffmpegPath: ffmpeg?.path ?? null }, log);
}

class RunnablePipeline implements Pipeline {
  readonly predictions$ = new Subject<Prediction>();
  readonly frames$ = new Subject<AnnotatedFrame>();
  readonly states$: Observable<SourceStateEvent>;
  readonly events$ = new Subject<Record<string, unknown>>();
  readonly engine: string;
  readonly metricsUrl: string | null;
  private readonly control: ReadControl = { stopRequested: false };
  private started = false;
  private closed = false;

  constructor(
    readonly config: Config,
    readonly descriptor: ModelDescriptor,
    readonly sources: readonly FrameSource[],
    private readonly host: InferenceHost,
    private readonly metrics: MetricsServer | null,
    private readonly outputs: { videoPath: string | null; eventsPath: string | null; ffmpegPath: string | null },
    private readonly log: Logger,
  ) {
    this.engine = host.info.backend;
    this.metricsUrl = metrics?.url ?? null;
    this.states$ = merge(...sources.flatMap((s) => (s.states$ === undefined ? [] : [s.states$])));
  }

  stop(): void {
    this.control.stopRequested = true;
    // A live source may be waiting for a frame that never comes: closing it ends that wait.
    for (const s of this.sources) if (s.info.kind === 'live') void s.close();
  }

  predictions(): AsyncIterable<Prediction> {
    return toAsyncIterable(this.predictions$);
  }

  async run(): Promise<RunSummary> {
    if (this.started) throw new Error('Pipeline.run() can be called once');
    this.started = true;
    const { config, descriptor, sources } = this;
    const spec = preprocessSpecOf(descriptor);
    const ring = new FrameRing(config.pipeline.ringSize, inputByteLength(spec));
    // Live frames must not queue behind the ring: they wait in their source, where a newer frame replaces them.
    const anyLive = sources.some((s) => s.info.kind === 'live');
    const permits = new Permits(anyLive ? config.pipeline.ringSize : Math.max(config.pipeline.maxInFlight, config.pipeline.ringSize));
    const sinks = this.openSinks();
    const stats = new RunStats(performance.now());
    const annotator = config.annotate.enabled || this.outputs.videoPath !== null ? new ResultAnnotator(config.annotate) : null;
    const bytesByFrame = new Map<Frame, number>();
    const sourceOf = new Map(sources.map((s) => [s.info.id, s]));
    const stateSub = this.states$.subscribe((event) => {
      this.log.info({ source: event.source, state: event.state, attempt: event.attempt, reason: event.reason, retryInMs: event.retryInMs }, `source ${event.state}`);
      this.events$.next({ ...event });
      this.metrics?.onState(event);
      for (const sink of sinks) sink.writeEvent?.({ ...event });
    });
    const budgetOf = new Map(sources.map((s, i) => [s.info.id, s.info.kind === 'live' ? (config.source[i]?.maxStalenessMs ?? null) : null]));
    const staleness = {
      maxStalenessMs: (f: Frame) => budgetOf.get(f.sourceId) ?? null,
      onDrop: (f: Frame, reason: DropReason) => {
        const source = sourceOf.get(f.sourceId);
        if (source !== undefined) source.drops[reason]++;
        f.mat.release();
        permits.release();
      },
    };
    for (const s of sources) s.start?.();
    const readers = sources.map((s, i) => readFrames(s, permits, config.source[i]?.maxFrames ?? null, this.control));

    const flow$ = merge(...readers).pipe(
      preprocessFrames(ring, spec, staleness),
      tap((p) => bytesByFrame.set(p.frame, p.bytesCopied)),
      inferFrames(this.host, ring, inputDims(spec), spec.dtype),
      decodeFrames(createDecoder(descriptor, config.postprocess)),
      annotateFrames(annotator, new FpsMeter()),
      tap((annotated) => {
        this.metrics?.onPrediction(annotated.prediction);
        this.predictions$.next(annotated.prediction);
        this.events$.next(toEventJson(annotated.prediction));
      }),
      writeFrames(sinks),
      tap(({ frame, prediction, writeMs }) => {
        stats.add({ ...prediction.timingsMs, write: writeMs }, prediction.latencyMs, bytesByFrame.get(frame) ?? 0);
        this.metrics?.onWrite(writeMs);
        bytesByFrame.delete(frame);
        this.frames$.next({ frame, prediction });
        frame.mat.release();
        permits.release();
      }),
      finalize(() => permits.close()),
      defaultIfEmpty(null),
    );

    try {
      await lastValueFrom(flow$);
    } catch (err) {
      const kept = await Promise.all(sinks.map((s) => s.abort()));
      await this.close();
      const partial = kept.filter((p): p is string => p !== null);
      stateSub.unsubscribe();
      this.predictions$.error(err);
      this.frames$.error(err);
      this.events$.error(err);
      if (partial.length > 0 && err instanceof Error) {
        err.message += `\nOutput written before the failure was kept as: ${partial.join(', ')}`;
      }
      throw err;
    }
    // Sources first, so their last state change ("stopped") still reaches the events file.
    await Promise.all(sources.map((s) => s.close()));
    const written: Record<string, string> = {};
    try {
      for (const sink of sinks) written[sink.name] = await sink.close();
    } finally {
      await this.close();
    }
    stateSub.unsubscribe();
    this.predictions$.complete();
    this.frames$.complete();
    this.events$.complete();
    return stats.summary(performance.now(), {
      drops: Object.fromEntries(sources.map((s) => [s.info.id, { ...s.drops }])),
      ringWaits: ring.waits,
      stoppedEarly: this.control.stopRequested,
      outputs: written,
      engine: this.engine,
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.sources.map((s) => s.close()));
    await this.host.close();
    await this.metrics?.close();
  }

  private openSinks(): Sink[] {
    const sinks: Sink[] = [];
    const { videoPath, eventsPath, ffmpegPath } = this.outputs;
    if (videoPath !== null && ffmpegPath !== null) {
      const { crf, preset } = this.config.output;
      sinks.push(new RoutedVideoSink(this.sources, { pathTemplate: videoPath, ffmpegPath, crf, preset }));
    }
    if (eventsPath !== null) sinks.push(new JsonlSink(eventsPath));
    if (sinks.length === 0) this.log.debug('no outputs configured: predictions go to subscribers only');
    return sinks;
  }
}
