import { createTracker } from './create-tracker.js';
import {
  anchorPoint,
  matchesClasses,
  resolveGeometry,
  type LineConfig,
  type PointXy,
  type ResolvedLine,
  type ResolvedZone,
  type ZoneConfig,
} from './geometry-schema.js';
import { LineCounter, type LineCounts, type LineCrossEvent } from './lines.js';
import { OBJECT_EVENT_SCHEMA_VERSION, type ObjectEventDraft } from './object-events.js';
import type { TrackSettings } from './track-schema.js';
import type { Track, TrackInput, Tracker, Xyxy } from './types.js';
import { ZoneTracker, type ZoneEvent } from './zones.js';

/** The frame a tracking update belongs to. */
export interface TrackedFrameRef {
  index: number;
  /** The tracker's clock: media time for files, epoch ms for live sources. */
  timestampMs: number;
  sizeWh: readonly [number, number];
}

/** What tracking added to one frame. */
export interface TrackedFrame {
  /** Confirmed tracks (seen in this frame, or `lost` and predicted); tentative ones are not shown. */
  tracks: Track[];
  /** The last positions (anchor points) of each confirmed track, oldest first. */
  trails: ReadonlyMap<number, readonly PointXy[]>;
  /** Object events this frame decided, in order: starts, zone and line events, updates, ends. */
  events: ObjectEventDraft[];
  zones: { zone: ResolvedZone; occupancy: number }[];
  lines: { line: ResolvedLine; counts: LineCounts }[];
  /** Confirmed or tentative tracks whose best detection is this frame's (a snapshot would be re-taken). */
  bestImproved: Track[];
  /** Tracks that went away in this frame without ever being confirmed: no events, and their snapshot is dropped. */
  forgotten: number[];
}

export interface SourceTrackingOptions {
  sourceId: string;
  settings: TrackSettings;
  zones: readonly ZoneConfig[];
  lines: readonly LineConfig[];
  /** Positions kept per track for trails. Default 20. */
  trailPoints?: number;
  /**
   * Zones and lines move only on frames whose matched detection scores at least this (the pipeline passes
   * postprocess.minScore: the boxes it shows). Default 0: every sighting.
   */
  minSightingScore?: number;
}

interface Best {
  score: number;
  xyxy: Xyxy;
  frameIndex: number;
}

interface Geometry {
  zones: ZoneTracker;
  lines: LineCounter;
  resolved: { zones: ResolvedZone[]; lines: ResolvedLine[] };
}

interface ObjectEntry {
  track: Track;
  started: boolean;
  best: Best | null;
  lastUpdateMs: number;
  zones: Set<string>;
  zonesChanged: boolean;
  trail: PointXy[];
}

/**
 * Tracking of one source: the tracker, its zones and lines, and the object lifecycle that turns tracks into object
 * events (object.start / update / end, zone.*, line.cross). Pure logic, no video: the pipeline's track stage feeds
 * it each frame's detections; tests feed it boxes. Memory is bounded by the live tracks.
 */
export class SourceTracking {
  readonly sourceId: string;
  readonly #settings: TrackSettings;
  readonly #tracker: Tracker;
  readonly #zoneConfigs: readonly ZoneConfig[];
  readonly #lineConfigs: readonly LineConfig[];
  readonly #trailPoints: number;
  readonly #minSightingScore: number;
  readonly #objects = new Map<number, ObjectEntry>();
  #geometry: Geometry | null = null;
  #last: TrackedFrameRef | null = null;
  /** The tracker's clock = frame time + this; it grows when frame time steps back (see #clock). */
  #clockOffsetMs = 0;
  #lastTimeMs = -Infinity;

  constructor(options: SourceTrackingOptions) {
    this.sourceId = options.sourceId;
    this.#settings = options.settings;
    this.#tracker = createTracker(options.settings.tracker);
    this.#zoneConfigs = options.zones;
    this.#lineConfigs = options.lines;
    this.#trailPoints = options.trailPoints ?? 20;
    this.#minSightingScore = options.minSightingScore ?? 0;
  }

  /** The tracker's lowScore: the decoder must keep boxes down to it. */
  get lowScore(): number {
    return this.#settings.tracker.lowScore;
  }

  /** Objects being followed now (confirmed or lost). */
  get activeObjects(): number {
    let n = 0;
    for (const o of this.#objects.values()) if (o.started) n++;
    return n;
  }

  /** One frame's detections → its tracks and the object events it decides. */
  update(detections: readonly TrackInput[], frame: TrackedFrameRef): TrackedFrame {
    this.#last = frame;
    const geometry = this.#geometryFor(frame.sizeWh);
    const classes = this.#settings.classes;
    const inputs = classes === undefined ? detections : detections.filter((d) => matchesClasses(classes, d));
    const timeMs = this.#clock(frame.timestampMs);
    const tracks = this.#tracker.update(inputs, timeMs);
    const starts: ObjectEventDraft[] = [];
    const bestImproved: Track[] = [];
    const reported = new Set<number>();
    for (const track of tracks) {
      reported.add(track.id);
      if (track.state === 'removed') continue;
      const entry = this.#objects.get(track.id) ?? this.#create(track);
      entry.track = track;
      const seenNow = track.lastSeenMs === timeMs && track.state !== 'lost';
      if (seenNow && (entry.best === null || track.score > entry.best.score)) {
        entry.best = { score: track.score, xyxy: roundBox(track.xyxy), frameIndex: frame.index };
        bestImproved.push(track);
      }
      if (track.state === 'confirmed' && seenNow) {
        entry.trail.push(anchorPoint(track.xyxy, 'bottom-center', frame.sizeWh));
        if (entry.trail.length > this.#trailPoints) entry.trail.shift();
      }
      if (track.state === 'confirmed' && !entry.started) {
        entry.started = true;
        entry.lastUpdateMs = timeMs;
        starts.push({ ...this.#base(track, frame), type: 'object.start', xyxy: roundBox(track.xyxy), score: round3(track.score) });
      }
    }
    // A track the tracker no longer reports is gone, whether or not it was reported `removed`.
    const ended: Track[] = tracks.filter((t) => t.state === 'removed' && this.#objects.has(t.id));
    for (const [id, entry] of this.#objects) if (!reported.has(id)) ended.push({ ...entry.track, state: 'removed' });
    const forShapes = [...tracks.map((t) => this.#asSighting(t)), ...ended.filter((t) => !reported.has(t.id))];
    const shapeEvents = this.#shapeEvents(geometry, forShapes, frame, timeMs);
    const updates = this.#updates(frame, timeMs, new Set(ended.map((t) => t.id)));
    const forgotten = ended.filter((t) => this.#objects.get(t.id)?.started === false).map((t) => t.id);
    const ends = ended.flatMap((t) => this.#end(t, frame, 'lost'));
    return {
      tracks: tracks.filter((t) => t.state === 'confirmed' || t.state === 'lost'),
      trails: new Map([...this.#objects].filter(([, o]) => o.started).map(([id, o]) => [id, o.trail])),
      events: [...starts, ...shapeEvents, ...updates, ...ends],
      zones: geometry.resolved.zones.map((zone) => ({ zone, occupancy: geometry.zones.occupancy(zone.name).total })),
      lines: geometry.resolved.lines.map((line) => ({ line, counts: geometry.lines.counts(line.name) })),
      bestImproved,
      forgotten,
    };
  }

  /** Ends every object still followed (the source ended or the run stopped): zone exits, then object.end. */
  finish(): ObjectEventDraft[] {
    const frame = this.#last;
    if (frame === null || this.#geometry === null) return [];
    const ended = [...this.#objects.values()].map((o): Track => ({ ...o.track, state: 'removed' }));
    const events = [
      ...this.#shapeEvents(this.#geometry, ended, frame, this.#lastTimeMs),
      ...ended.flatMap((t) => this.#end(t, frame, 'end-of-input')),
    ];
    this.#tracker.reset();
    return events;
  }

  /** Objects inside each zone now. */
  zoneOccupancy(): { zone: string; total: number }[] {
    const geometry = this.#geometry;
    if (geometry === null) return this.#zoneConfigs.map((z) => ({ zone: z.name, total: 0 }));
    return geometry.resolved.zones.map((z) => ({ zone: z.name, total: geometry.zones.occupancy(z.name).total }));
  }

  /** Each line's counts so far. */
  lineCounts(): { line: string; counts: LineCounts }[] {
    const geometry = this.#geometry;
    if (geometry === null) return this.#lineConfigs.map((l) => ({ line: l.name, counts: { in: 0, out: 0, byClass: {} } }));
    return geometry.resolved.lines.map((l) => ({ line: l.name, counts: geometry.lines.counts(l.name) }));
  }

  /** The best detection of a followed object so far: for its snapshot. */
  bestOf(trackId: number): Readonly<Best> | null {
    return this.#objects.get(trackId)?.best ?? null;
  }

  /**
   * The tracker's time for a frame: the frame's own, except that it never goes back. A live camera's timestamps are
   * its capture process's clock, which an NTP step can move backwards; the tracker, zones and lines need time that
   * only grows, so a step back is absorbed (that frame counts as simultaneous with the previous one) and later
   * frames keep their spacing. Events still carry the frame's own timestamp.
   */
  #clock(frameMs: number): number {
    let timeMs = frameMs + this.#clockOffsetMs;
    if (timeMs < this.#lastTimeMs) {
      this.#clockOffsetMs += this.#lastTimeMs - timeMs;
      timeMs = this.#lastTimeMs;
    }
    this.#lastTimeMs = timeMs;
    return timeMs;
  }

  #create(track: Track): ObjectEntry {
    const entry: ObjectEntry = { track, started: false, best: null, lastUpdateMs: -Infinity, zones: new Set(), zonesChanged: false, trail: [] };
    this.#objects.set(track.id, entry);
    return entry;
  }

  #geometryFor(sizeWh: readonly [number, number]): Geometry {
    if (this.#geometry === null) {
      // Fractions become pixels of the first frame; a camera that changes resolution keeps the first frame's.
      const resolved = resolveGeometry(this.#zoneConfigs, this.#lineConfigs, sizeWh);
      this.#geometry = {
        resolved,
        zones: new ZoneTracker({ zones: resolved.zones, frameSizeWh: sizeWh }),
        lines: new LineCounter({ lines: resolved.lines, frameSizeWh: sizeWh }),
      };
    }
    return this.#geometry;
  }

  /**
   * Zones and lines move on sightings the pipeline would show only. A track kept through a low-score match
   * (ByteTrack's second stage) is usually occluded: its box is partial or merged with the occluder's, and its bottom
   * is not where the feet are. Such a frame holds the object's zone and line state, as a prediction does while the
   * track is lost.
   */
  #asSighting(track: Track): Track {
    return track.state === 'confirmed' && track.score < this.#minSightingScore ? { ...track, state: 'lost' } : track;
  }

  /** Zone and line events of `tracks` (ended ones included, as `removed`: zones exit them, lines forget them). */
  #shapeEvents(geometry: Geometry, tracks: readonly Track[], frame: TrackedFrameRef, timeMs: number): ObjectEventDraft[] {
    const zoneEvents = geometry.zones.update(tracks, timeMs);
    const lineEvents = geometry.lines.update(tracks, timeMs);
    return [...zoneEvents.map((e) => this.#zoneDraft(geometry.zones, e, frame)), ...lineEvents.map((e) => this.#lineDraft(e, frame))];
  }

  #zoneDraft(zones: ZoneTracker, e: ZoneEvent, frame: TrackedFrameRef): ObjectEventDraft {
    const entry = this.#objects.get(e.trackId);
    if (entry !== undefined && e.type !== 'zone.dwell') {
      if (e.type === 'zone.enter') entry.zones.add(e.zone);
      else entry.zones.delete(e.zone);
      entry.zonesChanged = true;
    }
    const base = { ...this.#baseOf(e, frame), zone: e.zone, sinceMs: round3(e.sinceMs - this.#clockOffsetMs) };
    const occupancy = zones.occupancy(e.zone).total;
    if (e.type === 'zone.enter') return { ...base, type: 'zone.enter', occupancy };
    if (e.type === 'zone.dwell') return { ...base, type: 'zone.dwell', dwellMs: round3(e.dwellMs ?? 0) };
    return { ...base, type: 'zone.exit', dwellMs: round3(e.dwellMs ?? 0), reason: e.reason ?? 'left', occupancy };
  }

  #lineDraft(e: LineCrossEvent, frame: TrackedFrameRef): ObjectEventDraft {
    return { ...this.#baseOf(e, frame), type: 'line.cross', line: e.line, direction: e.direction, sinceMs: round3(e.sinceMs - this.#clockOffsetMs), counts: e.counts };
  }

  /** object.update: once per updateIntervalMs per object, and at once when its zones changed. */
  #updates(frame: TrackedFrameRef, timeMs: number, ending: ReadonlySet<number>): ObjectEventDraft[] {
    const out: ObjectEventDraft[] = [];
    for (const entry of this.#objects.values()) {
      const { track } = entry;
      // An object ending in this frame gets its object.end, not an update just before it.
      if (!entry.started || ending.has(track.id) || (track.state !== 'confirmed' && track.state !== 'lost')) continue;
      const due = timeMs - entry.lastUpdateMs >= this.#settings.updateIntervalMs;
      if (!due && !entry.zonesChanged) continue;
      entry.lastUpdateMs = timeMs;
      entry.zonesChanged = false;
      out.push({
        ...this.#base(track, frame),
        type: 'object.update',
        xyxy: roundBox(track.xyxy),
        score: round3(track.score),
        state: track.state,
        zones: [...entry.zones],
      });
    }
    return out;
  }

  #end(track: Track, frame: TrackedFrameRef, reason: 'lost' | 'end-of-input'): ObjectEventDraft[] {
    const entry = this.#objects.get(track.id);
    this.#objects.delete(track.id);
    if (entry?.started !== true || entry.best === null) return [];
    const { best } = entry;
    return [
      {
        ...this.#base(entry.track, frame),
        type: 'object.end',
        durationMs: round3(entry.track.lastSeenMs - entry.track.firstSeenMs),
        bestScore: round3(best.score),
        bestXyxy: best.xyxy,
        bestFrameIndex: best.frameIndex,
        reason,
      },
    ];
  }

  #base(track: Pick<Track, 'id' | 'classId' | 'label'>, frame: TrackedFrameRef) {
    const label = track.label === undefined ? {} : { label: track.label };
    return {
      schemaVersion: OBJECT_EVENT_SCHEMA_VERSION,
      source: this.sourceId,
      trackId: track.id,
      classId: track.classId,
      ...label,
      frameIndex: frame.index,
      timestampMs: round3(frame.timestampMs),
    };
  }

  #baseOf(e: { trackId: number; classId: number; label?: string }, frame: TrackedFrameRef) {
    return this.#base({ id: e.trackId, classId: e.classId, ...(e.label === undefined ? {} : { label: e.label }) }, frame);
  }
}

const round1 = (v: number) => Math.round(v * 10) / 10;
const round3 = (v: number) => Math.round(v * 1000) / 1000;
const roundBox = (b: Xyxy): Xyxy => [round1(b[0]), round1(b[1]), round1(b[2]), round1(b[3])];
