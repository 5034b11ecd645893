import { setTimeout as sleepFor } from 'node:timers/promises';
import { InferenceSchedule } from './inference-schedule.js';
import { Subject, concatMap, defaultIfEmpty, finalize, from, lastValueFrom, map, merge, of, tap, type Observable } from 'rxjs';
import { ResultAnnotator } from '../annotate/result-annotator.js';
import type { Config } from '../config/schema.js';
import type { InferenceHost } from '../inference/inference-host.js';
import type { Logger } from '../log.js';
import { FpsMeter } from '../metrics/fps-meter.js';
import type { MetricsServer } from '../metrics/prometheus.js';
import type { UiServer } from '../ui/ui-server.js';
import { RunStats, type RunSummary } from '../metrics/run-stats.js';
import type { ModelDescriptor } from '../models/descriptor-schema.js';
import { createDecoder } from '../postprocess/decode-output.js';
import { inputByteLength, inputDims, preprocessSpecOf } from '../preprocess/preprocess-frame.js';
import { openSinks, type SinkOutputs } from '../sinks/open-sinks.js';
import type { Sink } from '../sinks/sink.js';
import type { FrameSource } from '../sources/frame-source.js';
import type { DropReason, SourceStateEvent } from '../sources/source-state.js';
import { toAsyncIterable } from './async-queue.js';
import { endOfInputProblem } from './end-of-input.js';
import { FrameRing } from './frame-ring.js';
import type { AnnotatedFrame, Frame, Prediction } from './frame.js';
import { FrameErrorPolicy } from './frame-error-policy.js';
import { annotateFrames } from './operators/annotate-frames.js';
import { decodeFrames } from './operators/decode-frames.js';
import { inferFrames } from './operators/infer-frames.js';
import { preprocessFrames } from './operators/preprocess-frames.js';
import { readFrames, type ReadControl } from './operators/read-frames.js';
import { writeFrames } from './operators/write-frames.js';
import { Permits } from './permits.js';
import type { Pipeline } from './create-pipeline.js';
import { toEventJson } from './prediction-event.js';
import { finishRun } from './finish-run.js';
import { newRunId } from './object-event-publisher.js';
import { TrackingRun } from './tracking-run.js';
import { DeliverySink } from '../delivery/delivery-sink.js';
import { trackFrames } from './operators/track-frames.js';
import type { ObjectEvent } from '../tracking/object-events.js';

/** How often changed drop counts are written to the events file (as `drops` events). */
const DROPS_EVENT_INTERVAL_MS = 60_000;

export interface RunnableParts {
  config: Config;
  descriptor: ModelDescriptor;
  sources: readonly FrameSource[];
  host: InferenceHost;
  metrics: MetricsServer | null;
  /** The live page's server, closed with the pipeline (its LiveView is one of the sinks). */
  ui: UiServer | null;
  outputs: SinkOutputs;
  extraSinks: readonly Sink[];
  log: Logger;
  /** Runs one inference call takes (1 = no batching). */
  maxBatch?: number;
  /** Inference workers side by side (onnx.workers). The ring holds ringSize × maxBatch × workers slots. */
  workers?: number;
}

/** The pipeline createPipeline returns: wires the operators, then shuts everything down in order. */
export class RunnablePipeline implements Pipeline {
  readonly predictions$ = new Subject<Prediction>();
  readonly frames$ = new Subject<AnnotatedFrame>();
  readonly states$: Observable<SourceStateEvent>;
  readonly events$ = new Subject<Record<string, unknown>>();
  readonly objectEvents$ = new Subject<ObjectEvent>();
  readonly runId = newRunId();
  readonly engine: string;
  readonly metricsUrl: string | null;
  readonly uiUrl: string | null;
  readonly config: Config;
  readonly descriptor: ModelDescriptor;
  readonly sources: readonly FrameSource[];
  private readonly control: ReadControl = { stopRequested: false };
  private started = false;
  private closed = false;

  constructor(private readonly parts: RunnableParts) {
    this.config = parts.config;
    this.descriptor = parts.descriptor;
    this.sources = parts.sources;
    this.engine = parts.host.info.backend;
    this.metricsUrl = parts.metrics?.url ?? null;
    this.uiUrl = parts.ui?.url ?? null;
    this.states$ = merge(...parts.sources.flatMap((s) => (s.states$ === undefined ? [] : [s.states$])));
  }

  stop(): void {
    this.control.stopRequested = true;
    // A live source may be waiting for a frame that never comes: closing it ends that wait.
    for (const s of this.sources) if (s.info.kind === 'live') void s.close();
  }

  predictions(options: { maxBuffered?: number } = {}): AsyncIterable<Prediction> & { readonly dropped: number } {
    return toAsyncIterable(this.predictions$, options);
  }

  objectEvents(options: { maxBuffered?: number } = {}): AsyncIterable<ObjectEvent> & { readonly dropped: number } {
    return toAsyncIterable(this.objectEvents$, options);
  }

  async run(): Promise<RunSummary> {
    if (this.started) throw new Error(this.closed ? 'Pipeline.run() after close(): create a new pipeline' : 'Pipeline.run() can be called once');
    this.started = true;
    const { config, descriptor, sources, host, metrics, log } = this.parts;
    const spec = preprocessSpecOf(descriptor);
    // Batching and several workers: every run in progress needs its slot, so ringSize counts groups of them.
    const maxBatch = this.parts.maxBatch ?? 1;
    const workers = this.parts.workers ?? 1;
    const ring = new FrameRing(config.pipeline.ringSize * maxBatch * workers, inputByteLength(spec));
    // Live frames must not queue behind the ring: they wait in their source, where a newer frame replaces them.
    const anyLive = sources.some((s) => s.info.kind === 'live');
    const permits = new Permits(anyLive ? ring.slotCount : Math.max(config.pipeline.maxInFlight, ring.slotCount));
    const sinks = [...openSinks(config, sources, this.parts.outputs, log), ...this.parts.extraSinks];
    for (const sink of sinks) if (sink instanceof DeliverySink) metrics?.trackDelivery(sink);
    const stats = new RunStats(performance.now());
    const { videoPath, clipsDir, ffmpegPath } = this.parts.outputs;
    // Videos and clips show what the model saw: they are annotated even with annotate.enabled off.
    const annotator = config.annotate.enabled || videoPath !== null || clipsDir !== null ? new ResultAnnotator(config.annotate) : null;
    const bytesByFrame = new Map<Frame, number>();
    const sourceOf = new Map(sources.map((s) => [s.info.id, s]));
    const ended = new Set<FrameSource>();
    const emitEvent = (event: Record<string, unknown>) => {
      this.events$.next(event);
      for (const sink of sinks) sink.writeEvent?.(event);
    };
    const tracking = new TrackingRun({
      config,
      descriptor,
      sources,
      snapshotsDir: this.parts.outputs.snapshotsDir,
      clips: clipsDir === null || ffmpegPath === null ? null : { dir: clipsDir, ffmpegPath },
      runId: this.runId,
      emit: (event) => {
        this.objectEvents$.next(event);
        emitEvent(event as unknown as Record<string, unknown>);
        metrics?.onObjectEvent(event);
      },
      log,
    });
    metrics?.trackTracking(tracking.trackings);
    const stateSub = this.states$.subscribe((event) => {
      log.info({ source: event.source, state: event.state, attempt: event.attempt, reason: event.reason, retryInMs: event.retryInMs }, `source ${event.state}`);
      emitEvent({ ...event });
      metrics?.onState(event);
    });
    // Whatever ends a frame's trip (written, or dropped on the way) gives back what it holds.
    const release = (f: Frame) => {
      bytesByFrame.delete(f);
      f.mat.release();
      permits.release();
      tracking.frameDone(f.sourceId);
    };
    const drop = (f: Frame, reason: DropReason) => {
      const source = sourceOf.get(f.sourceId);
      if (source !== undefined) source.drops[reason]++;
      release(f);
    };
    const budgetOf = new Map(sources.map((s, i) => [s.info.id, s.info.kind === 'live' ? (config.source[i]?.maxStalenessMs ?? null) : null]));
    const staleness = { maxStalenessMs: (f: Frame) => budgetOf.get(f.sourceId) ?? null, onDrop: drop };
    const frameErrors = new FrameErrorPolicy(config.pipeline.maxFailedFramesInARow, log, emitEvent);
    const onSourceEnd = (s: FrameSource) => {
      ended.add(s);
      tracking.sourceEnded(s.info.id);
      for (const sink of sinks) sink.sourceEnded?.(s.info.id);
      if (s.failure !== undefined && config.pipeline.failWhen === 'any-source-failed') this.stop();
    };
    // Drops by reason reach the events file too: cumulative per source, once a minute when they changed, and at the end.
    const dropsSeen = new Map<string, string>();
    const emitDrops = () => {
      for (const s of sources) {
        const key = JSON.stringify(s.drops);
        if (dropsSeen.get(s.info.id) === key || Object.values(s.drops).every((n) => n === 0)) continue;
        dropsSeen.set(s.info.id, key);
        emitEvent({ type: 'drops', source: s.info.id, atMs: Date.now(), drops: { ...s.drops } });
      }
    };
    const dropsTimer = setInterval(emitDrops, DROPS_EVENT_INTERVAL_MS).unref();
    for (const s of sources) s.start?.();
    const schedule = new InferenceSchedule(undefined, undefined, maxBatch, workers);
    // Live sources, just in time: wait until the worker is about to be free, then read the newest frame.
    const justInTime = (sourceId: string) => async () => {
      const ms = schedule.delayMs();
      if (ms > 0) await sleepFor(ms);
      schedule.reading(sourceId);
    };
    const readers = sources.map((s, i) =>
      readFrames(
        s,
        permits,
        config.source[i]?.maxFrames ?? null,
        this.control,
        () => onSourceEnd(s),
        s.info.kind === 'live' && config.pipeline.justInTime ? justInTime(s.info.id) : undefined,
      ),
    );

    const flow$ = merge(...readers).pipe(
      tap((f) => tracking.frameRead(f.sourceId)),
      preprocessFrames(ring, spec, staleness, schedule),
      tap((p) => bytesByFrame.set(p.frame, p.bytesCopied)),
      inferFrames(
        host,
        ring,
        inputDims(spec),
        spec.dtype,
        ({ frame }, err) => {
          drop(frame, 'inference-error');
          frameErrors.failed(frame, err);
        },
        schedule,
      ),
      tap(() => frameErrors.succeeded()),
      // The decoder keeps the low-score boxes ByteTrack's second stage uses; trackFrames shows only minScore and up.
      decodeFrames(createDecoder(descriptor, { ...config.postprocess, minScore: tracking.decodeMinScore(config.postprocess.minScore) })),
      trackFrames(tracking.trackings, tracking.snapshots, config.postprocess.minScore),
      annotateFrames(annotator, new FpsMeter()),
      // Object events go out after the frame is annotated and before it is written (their snapshots first).
      concatMap((annotated) =>
        annotated.tracked === null || annotated.tracked.events.length === 0
          ? of(annotated)
          : from(tracking.publish(annotated.tracked.events)).pipe(map(() => annotated)),
      ),
      // Then into its source's rolling clip buffer (tracked sources, with clips on).
      concatMap((annotated) => {
        const recorded = tracking.record(annotated);
        return recorded === null ? of(annotated) : from(recorded).pipe(map(() => annotated));
      }),
      tap((annotated) => {
        metrics?.onPrediction(annotated.prediction);
        this.predictions$.next(annotated.prediction);
        this.events$.next(toEventJson(annotated.prediction));
      }),
      writeFrames(sinks),
      tap(({ frame, prediction, writeMs }) => {
        stats.add({ ...prediction.timingsMs, write: writeMs }, prediction.latencyMs, bytesByFrame.get(frame) ?? 0);
        metrics?.onWrite(writeMs);
        this.frames$.next({ frame, prediction });
        release(frame);
      }),
      finalize(() => permits.close()),
      defaultIfEmpty(null),
    );

    let flowError: unknown;
    try {
      await lastValueFrom(flow$);
    } catch (err) {
      flowError = err;
    }
    // Objects still followed end with the input (zone exits, object.end), before the outputs close.
    await tracking.finishAll();
    return finishRun({
      flowError,
      sources,
      sinks,
      closeRest: () => this.close(),
      endOfInput: () => {
        clearInterval(dropsTimer);
        emitDrops();
        return endOfInputProblem(sources, config, ended, emitEvent);
      },
      unsubscribeStates: () => stateSub.unsubscribe(),
      subjects: [this.predictions$, this.frames$, this.events$, this.objectEvents$],
      summarize: (outputs, sourceProblems) =>
        stats.summary(performance.now(), {
          drops: Object.fromEntries(sources.map((s) => [s.info.id, { ...s.drops }])),
          ringWaits: ring.waits,
          stoppedEarly: this.control.stopRequested,
          // A failed run names only what was finalised; snapshots and clips are complete files either way.
          outputs: { ...outputs, ...tracking.outputs() },
          engine: this.engine,
          sourceProblems,
          meanBatchSize: schedule.meanBatchSize,
          ...tracking.summary(),
        }),
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Closed without running: nothing will ever come, so a `for await` over predictions() must end now.
    if (!this.started) {
      this.started = true;
      for (const s of [this.predictions$, this.frames$, this.events$, this.objectEvents$]) s.complete();
    }
    const { sources, host, metrics, ui } = this.parts;
    await Promise.allSettled(sources.map((s) => s.close()));
    await Promise.allSettled([host.close(), metrics?.close(), ui?.close()]);
  }
}

