import { ClipRecorder, type ClipSource } from '../clips/clip-recorder.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { ModelDescriptor } from '../models/descriptor-schema.js';
import type { RunSummary } from '../metrics/run-stats.js';
import { SnapshotStore } from '../snapshots/snapshot-store.js';
import type { FrameSource } from '../sources/frame-source.js';
import type { ClipTriggerType, ObjectEvent, ObjectEventDraft } from '../tracking/object-events.js';
import type { AnnotatedFrame } from './frame.js';
import { SourceTracking } from '../tracking/source-tracking.js';
import { trackSettingsOf } from '../tracking/track-schema.js';
import { ObjectEventPublisher } from './object-event-publisher.js';

/** Snapshot files one run keeps at most (the oldest of this run are deleted beyond it). */
const MAX_SNAPSHOT_FILES = 10_000;

/**
 * The tracked sources of one run and the life of their objects: one SourceTracking per tracked source, the
 * snapshot store, and the publisher that stamps and emits object events. A source's objects end (object.end,
 * `end-of-input`) as soon as the source has ended and its last frame has left the pipeline, not at the end of the
 * whole run: a camera that gives up in a multi-camera run stops counting its objects as followed.
 */
export class TrackingRun {
  readonly trackings: ReadonlyMap<string, SourceTracking>;
  readonly snapshots: SnapshotStore | null;
  readonly clips: ClipRecorder | null;
  readonly #publisher: ObjectEventPublisher;
  readonly #inFlight = new Map<string, number>();
  readonly #ended = new Set<string>();
  readonly #finishing: Promise<void>[] = [];
  readonly #log: Logger;

  constructor(options: {
    config: Config;
    descriptor: ModelDescriptor;
    sources: readonly FrameSource[];
    snapshotsDir: string | null;
    /** The clips folder (created, writable) and the ffmpeg that records them, or null for no clips. */
    clips: { dir: string; ffmpegPath: string } | null;
    runId: string;
    emit: (event: ObjectEvent) => void;
    log: Logger;
  }) {
    const { config, sources, snapshotsDir, runId, log } = options;
    this.#log = log;
    this.trackings = trackingsOf(config, options.descriptor, sources);
    this.snapshots =
      snapshotsDir === null || this.trackings.size === 0
        ? null
        : new SnapshotStore({ dir: snapshotsDir, ...config.output.snapshot, runId, maxFiles: MAX_SNAPSHOT_FILES });
    this.clips = options.clips === null || this.trackings.size === 0 ? null : clipRecorderOf(config, sources, this.trackings, options.clips, runId, log, (d) => void this.#publisher.publishClip(d));
    this.#publisher = new ObjectEventPublisher(options.emit, this.snapshots, log, runId, this.clips);
  }

  /** The lowest score the decoder must keep: the trackers' lowScore (ByteTrack's second stage), or `minScore`. */
  decodeMinScore(minScore: number): number {
    return Math.min(minScore, ...[...this.trackings.values()].map((t) => t.lowScore));
  }

  /** Stamps and emits one frame's object events, in order (their snapshots written first). */
  publish(drafts: readonly ObjectEventDraft[]): Promise<void> {
    return this.#publisher.publish(drafts);
  }

  /**
   * Records an annotated frame into its source's rolling clip buffer (after its events were published, so a clip
   * they asked for starts early enough). Null when the run records no clips: nothing to wait for.
   */
  record(annotated: AnnotatedFrame): Promise<void> | null {
    const { frame } = annotated;
    if (this.clips === null || !this.trackings.has(frame.sourceId)) return null;
    return this.clips.write(frame.sourceId, frame.mat, frame.timestampMs);
  }

  /** A frame of `sourceId` entered the pipeline. */
  frameRead(sourceId: string): void {
    this.#inFlight.set(sourceId, (this.#inFlight.get(sourceId) ?? 0) + 1);
  }

  /** A frame of `sourceId` left it (written or dropped): after its object events went out. */
  frameDone(sourceId: string): void {
    const n = (this.#inFlight.get(sourceId) ?? 1) - 1;
    this.#inFlight.set(sourceId, n);
    if (n === 0 && this.#ended.has(sourceId)) this.#finish(sourceId);
  }

  /** `sourceId` will read no more frames; its objects end once the frames it read have left the pipeline. */
  sourceEnded(sourceId: string): void {
    if (this.#ended.has(sourceId)) return;
    this.#ended.add(sourceId);
    if ((this.#inFlight.get(sourceId) ?? 0) === 0) this.#finish(sourceId);
  }

  /** Ends the objects of every source not yet finished and waits for all their events: before the outputs close. */
  async finishAll(): Promise<void> {
    for (const id of this.trackings.keys()) if (!this.#ended.has(id)) this.sourceEnded(id);
    // A flow that failed may have left frames counted in flight: end those sources' objects anyway.
    for (const id of this.trackings.keys()) if ((this.#inFlight.get(id) ?? 0) > 0) this.#finish(id);
    await Promise.allSettled(this.#finishing);
    // Clips still waiting for their post-roll are cut from what was recorded; their clip events go out too.
    await this.clips?.finish().catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, 'finishing clips failed'));
    await this.#publisher.idle();
  }

  /** The snapshot and clip folders, for the run's list of outputs (when something was written there). */
  outputs(): Record<string, string> {
    const out: Record<string, string> = {};
    const snapshots = this.snapshots?.writtenCount ?? 0;
    if (this.snapshots !== null && snapshots > 0) out['snapshots'] = `${this.snapshots.dir} (${snapshots} files)`;
    const clips = this.clips?.counts;
    if (this.clips !== null && clips !== undefined && clips.written + clips.failed > 0) {
      out['clips'] = `${this.clips.dir} (${clips.written} clip${clips.written === 1 ? '' : 's'}${clips.failed > 0 ? `, ${clips.failed} failed` : ''})`;
    }
    return out;
  }

  summary(): Pick<RunSummary, 'objectEvents' | 'lineCounts'> {
    return {
      objectEvents: Object.fromEntries(this.#publisher.countsByType),
      lineCounts: [...this.trackings.values()].flatMap((t) => t.lineCounts().map(({ line, counts }) => ({ source: t.sourceId, line, ...counts }))),
    };
  }

  #finish(sourceId: string): void {
    const tracking = this.trackings.get(sourceId);
    if (tracking === undefined) return;
    this.#inFlight.set(sourceId, 0);
    try {
      const ended = this.#publisher.publish(tracking.finish()).catch((err: unknown) => this.#failed(sourceId, err));
      // Its last clips are cut once its last events (object.end) had their say.
      this.#finishing.push(ended.then(() => this.clips?.endSource(sourceId)));
    } catch (err) {
      this.#failed(sourceId, err);
    }
  }

  #failed(sourceId: string, err: unknown): void {
    this.#log.warn({ source: sourceId, err: (err as Error).message }, 'ending the objects of a source failed');
  }
}

/** Clips for the tracked sources; the event types that get one: as configured, else by what the source has. */
function clipRecorderOf(
  config: Config,
  sources: readonly FrameSource[],
  trackings: ReadonlyMap<string, SourceTracking>,
  where: { dir: string; ffmpegPath: string },
  runId: string,
  log: Logger,
  onClip: ConstructorParameters<typeof ClipRecorder>[0]['onClip'],
): ClipRecorder {
  const { events, ...settings } = config.output.clip;
  const clipSources: ClipSource[] = [];
  sources.forEach((s, i) => {
    const sourceConfig = config.source[i];
    if (!trackings.has(s.info.id) || sourceConfig === undefined) return;
    const hasGeometry = sourceConfig.zones.length > 0 || sourceConfig.lines.length > 0;
    const triggers: ClipTriggerType[] = events ?? (hasGeometry ? ['zone.enter', 'line.cross'] : ['object.start']);
    clipSources.push({ id: s.info.id, kind: s.info.kind, fps: s.info.fps, triggers: new Set(triggers) });
  });
  return new ClipRecorder({ dir: where.dir, ffmpegPath: where.ffmpegPath, runId, settings, sources: clipSources, onClip, log });
}

/** One SourceTracking per tracked source (detection models only; createPipeline refuses tracking otherwise). */
function trackingsOf(config: Config, descriptor: ModelDescriptor, sources: readonly FrameSource[]): Map<string, SourceTracking> {
  const out = new Map<string, SourceTracking>();
  if (descriptor.task !== 'detection') return out;
  sources.forEach((s, i) => {
    const sourceConfig = config.source[i];
    const settings = sourceConfig === undefined ? null : trackSettingsOf(sourceConfig);
    if (sourceConfig === undefined || settings === null) return;
    const options = {
      sourceId: s.info.id,
      settings,
      zones: sourceConfig.zones,
      lines: sourceConfig.lines,
      trailPoints: config.annotate.trailPoints,
      minSightingScore: config.postprocess.minScore,
    };
    out.set(s.info.id, new SourceTracking(options));
  });
  return out;
}
