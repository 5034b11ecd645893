import { Subject, finalize, lastValueFrom, tap, defaultIfEmpty, type Observable } from 'rxjs';
import { ResultAnnotator } from '../annotate/result-annotator.js';
import { parseConfig } from '../config/load-config.js';
import type { Config, ConfigInput } from '../config/schema.js';
import { InferenceWorkerHost } from '../inference/worker-host.js';
import { silentLogger, type Logger } from '../log.js';
import { FpsMeter } from '../metrics/fps-meter.js';
import { RunStats, type RunSummary } from '../metrics/run-stats.js';
import type { ModelDescriptor } from '../models/descriptor-schema.js';
import { loadModelDescriptor } from '../models/load-descriptor.js';
import { createDecoder } from '../postprocess/decode-output.js';
import { inputByteLength, inputDims, preprocessSpecOf } from '../preprocess/preprocess-frame.js';
import { locateFfmpeg } from '../sinks/ffmpeg-path.js';
import { JsonlSink } from '../sinks/jsonl-sink.js';
import { prepareOutputPath } from '../sinks/output-path.js';
import type { Sink } from '../sinks/sink.js';
import { VideoFileSink } from '../sinks/video-file-sink.js';
import { FileSource } from '../sources/file-source.js';
import type { FrameSource } from '../sources/frame-source.js';
import { checkEngineFormat, checkModelInput } from './check-model-input.js';
import { FrameRing } from './frame-ring.js';
import type { AnnotatedFrame, Prediction } from './frame.js';
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
  readonly source: FrameSource;
  /** e.g. `tfjs 4.22.0 (wasm)`. */
  readonly engine: string;
  /** One event per frame, in frame order, once the frame is annotated. */
  readonly predictions$: Observable<Prediction>;
  /** Annotated frames; `frame.mat` is valid only during the emission (it is released after the sinks). */
  readonly frames$: Observable<AnnotatedFrame>;
  /** Runs to the end of the source (or stop()); resolves with the summary once every output is finalised. */
  run(): Promise<RunSummary>;
  /** Stops reading; frames already read finish and outputs are finalised normally. */
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
  const descriptor = loadModelDescriptor(config.model);
  const engine = config.engine === 'auto' ? descriptor.engine : config.engine;
  checkEngineFormat(engine, descriptor);
  const videoPath = config.output.video === null ? null : prepareOutputPath(config.output.video, 'video output');
  const eventsPath = config.output.events === null ? null : prepareOutputPath(config.output.events, 'events output');
  const ffmpeg = videoPath === null ? null : locateFfmpeg();
  if (ffmpeg !== null) log.info({ ffmpeg: ffmpeg.path, via: ffmpeg.via }, 'ffmpeg found');

  const source = await FileSource.open(config.source.uri);
  log.info({ source: source.info }, 'source opened');
  let host: InferenceWorkerHost | undefined;
  try {
    host = await InferenceWorkerHost.start(descriptor, engine);
    checkModelInput(host.info, descriptor, inputDims(preprocessSpecOf(descriptor)));
  } catch (err) {
    source.close();
    await host?.close();
    throw err;
  }
  log.info({ model: descriptor.name, engine: host.info.backend }, 'model loaded');
  return new RunnablePipeline(config, descriptor, source, host, { videoPath, eventsPath, ffmpegPath: ffmpeg?.path ?? null }, log);
}

class RunnablePipeline implements Pipeline {
  readonly predictions$ = new Subject<Prediction>();
  readonly frames$ = new Subject<AnnotatedFrame>();
  readonly engine: string;
  private readonly control: ReadControl = { stopRequested: false };
  private started = false;
  private closed = false;

  constructor(
    readonly config: Config,
    readonly descriptor: ModelDescriptor,
    readonly source: FileSource,
    private readonly host: InferenceWorkerHost,
    private readonly outputs: { videoPath: string | null; eventsPath: string | null; ffmpegPath: string | null },
    private readonly log: Logger,
  ) {
    this.engine = host.info.backend;
  }

  stop(): void {
    this.control.stopRequested = true;
  }

  predictions(): AsyncIterable<Prediction> {
    const queue: Prediction[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    let failure: unknown;
    this.predictions$.subscribe({
      next: (p) => (queue.push(p), wake?.()),
      error: (e: unknown) => ((failure = e), (ended = true), wake?.()),
      complete: () => ((ended = true), wake?.()),
    });
    return {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          const next = queue.shift();
          if (next !== undefined) yield next;
          else if (failure !== undefined) throw failure;
          else if (ended) return;
          else await new Promise<void>((resolve) => (wake = resolve));
        }
      },
    };
  }

  async run(): Promise<RunSummary> {
    if (this.started) throw new Error('Pipeline.run() can be called once');
    this.started = true;
    const { config, descriptor, source } = this;
    const spec = preprocessSpecOf(descriptor);
    const ring = new FrameRing(config.pipeline.ringSize, inputByteLength(spec));
    const permits = new Permits(Math.max(config.pipeline.maxInFlight, config.pipeline.ringSize));
    const sinks = this.openSinks();
    const stats = new RunStats(performance.now());
    const annotator = config.annotate.enabled || this.outputs.videoPath !== null ? new ResultAnnotator(config.annotate) : null;
    const bytesByFrame = new Map<number, number>();

    const flow$ = readFrames(source, permits, config.source.maxFrames, this.control).pipe(
      preprocessFrames(ring, spec),
      tap((p) => bytesByFrame.set(p.frame.index, p.bytesCopied)),
      inferFrames(this.host, ring, inputDims(spec), spec.dtype),
      decodeFrames(createDecoder(descriptor, config.postprocess)),
      annotateFrames(annotator, new FpsMeter()),
      tap((annotated) => this.predictions$.next(annotated.prediction)),
      writeFrames(sinks),
      tap(({ frame, prediction, writeMs }) => {
        stats.add({ ...prediction.timingsMs, write: writeMs }, prediction.latencyMs, bytesByFrame.get(frame.index) ?? 0);
        bytesByFrame.delete(frame.index);
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
      this.predictions$.error(err);
      this.frames$.error(err);
      if (partial.length > 0 && err instanceof Error) {
        err.message += `\nOutput written before the failure was kept as: ${partial.join(', ')}`;
      }
      throw err;
    }
    const written: Record<string, string> = {};
    try {
      for (const sink of sinks) written[sink.name] = await sink.close();
    } finally {
      await this.close();
    }
    this.predictions$.complete();
    this.frames$.complete();
    return stats.summary(performance.now(), {
      ringWaits: ring.waits,
      stoppedEarly: this.control.stopRequested,
      outputs: written,
      engine: this.engine,
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.source.close();
    await this.host.close();
  }

  private openSinks(): Sink[] {
    const sinks: Sink[] = [];
    const { videoPath, eventsPath, ffmpegPath } = this.outputs;
    if (videoPath !== null && ffmpegPath !== null) {
      const { config } = this;
      sinks.push(
        new VideoFileSink({
          path: videoPath,
          ffmpegPath,
          sizeWh: this.source.info.sizeWh,
          fps: this.source.info.fps,
          crf: config.output.crf,
          preset: config.output.preset,
        }),
      );
    }
    if (eventsPath !== null) sinks.push(new JsonlSink(eventsPath));
    if (sinks.length === 0) this.log.debug('no outputs configured: predictions go to subscribers only');
    return sinks;
  }
}
