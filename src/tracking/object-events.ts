import type { LineCounts } from './lines.js';
import type { Xyxy } from './types.js';

/**
 * Object-level events: what happened to tracked objects, as subscribers and the events file get them. The schema
 * is versioned (`schemaVersion` in every event) and documented in the README; a change that removes or renames a
 * field raises the version.
 */
export const OBJECT_EVENT_SCHEMA_VERSION = 1 as const;

export type ObjectEventType = ObjectEvent['type'];

/** The event types, in the order they are documented. */
export const OBJECT_EVENT_TYPES: readonly ObjectEventType[] = [
  'object.start',
  'object.update',
  'object.end',
  'zone.enter',
  'zone.exit',
  'zone.dwell',
  'line.cross',
  'clip.ready',
  'clip.failed',
];

/** What every object event carries. */
export interface ObjectEventBase {
  schemaVersion: typeof OBJECT_EVENT_SCHEMA_VERSION;
  /** Unique in the run and never reused (`<run id>-<sequence>`): a consumer can drop a duplicate by it. */
  id: string;
  source: string;
  /** The object's id within its source; every event of one object has it. */
  trackId: number;
  classId: number;
  label?: string;
  /** The frame that decided the event: its index in the source and its time (media time for files, epoch ms live). */
  frameIndex: number;
  timestampMs: number;
  /** Wall-clock time (epoch ms) the event was emitted. */
  atMs: number;
  /** Path of a JPEG of the object's best frame so far (with `output.snapshots`, on start, end, zone.enter, line.cross). */
  snapshot?: string;
  /**
   * Path of the MP4 clip that will show this event (with `output.clips`, for the configured event types). The file
   * appears when the `clip.ready` event for this event's id arrives, `postSeconds` later; `clip.failed` if it cannot.
   */
  clip?: string;
}

export interface ObjectStartEvent extends ObjectEventBase {
  type: 'object.start';
  xyxy: Xyxy;
  score: number;
}

export interface ObjectUpdateEvent extends ObjectEventBase {
  type: 'object.update';
  xyxy: Xyxy;
  score: number;
  /** lost: not seen in this frame (the box is the prediction). */
  state: 'confirmed' | 'lost';
  /** Zones the object is in now. */
  zones: string[];
}

export interface ObjectEndEvent extends ObjectEventBase {
  type: 'object.end';
  /** First sighting → last sighting, in the source's time. */
  durationMs: number;
  /** The highest detection score of the track and the box and frame it had then. */
  bestScore: number;
  bestXyxy: Xyxy;
  bestFrameIndex: number;
  /** lost: not seen for the tracker's maxAgeMs; end-of-input: the source ended (or the run stopped). */
  reason: 'lost' | 'end-of-input';
}

export interface ZoneEnterEvent extends ObjectEventBase {
  type: 'zone.enter';
  zone: string;
  /** When the object's anchor was first inside (the hysteresis decides later, at timestampMs). */
  sinceMs: number;
  /** Objects in the zone now, this one included. */
  occupancy: number;
}

export interface ZoneExitEvent extends ObjectEventBase {
  type: 'zone.exit';
  zone: string;
  /** When the object left (its first frame outside, or its last sighting if its track ended inside). */
  sinceMs: number;
  /** How long it stayed: enter's sinceMs → exit's sinceMs. */
  dwellMs: number;
  reason: 'left' | 'track-ended';
  occupancy: number;
}

export interface ZoneDwellEvent extends ObjectEventBase {
  type: 'zone.dwell';
  zone: string;
  /** When the stay began. */
  sinceMs: number;
  /** How long it has stayed (≥ the zone's dwellMs). */
  dwellMs: number;
}

export interface LineCrossObjectEvent extends ObjectEventBase {
  type: 'line.cross';
  line: string;
  /** in: from the left of from → to to its right as seen on screen (for a line drawn left → right: downwards). */
  direction: 'in' | 'out';
  /** When the anchor crossed (the hysteresis confirms it later, at timestampMs). */
  sinceMs: number;
  /** The line's running counts including this crossing, in total and per class. */
  counts: LineCounts;
}

/** The event types that can have a clip (`output.clip.events`). */
export const CLIP_TRIGGER_TYPES = ['object.start', 'object.end', 'zone.enter', 'zone.exit', 'zone.dwell', 'line.cross'] as const;
export type ClipTriggerType = (typeof CLIP_TRIGGER_TYPES)[number];

/**
 * The clip an earlier event named is written and playable. Carries that event's object fields (trackId, class,
 * frameIndex, timestampMs), so filters by class or source treat it like the event it is for. Several events close
 * in time share one clip file; each gets its own clip.ready.
 */
export interface ClipReadyEvent extends ObjectEventBase {
  type: 'clip.ready';
  /** The event the clip is for. */
  forEventId: string;
  forEventType: ClipTriggerType;
  clip: string;
  /** The source times (ms, the clock of timestampMs) of the clip's first and last frame. */
  fromMs: number;
  toMs: number;
  sizeBytes: number;
}

/** The clip an earlier event named could not be written (no video recorded for its time, ffmpeg failed). */
export interface ClipFailedEvent extends ObjectEventBase {
  type: 'clip.failed';
  forEventId: string;
  forEventType: ClipTriggerType;
  /** The path the event announced; no file is there. */
  clip: string;
  reason: string;
}

/** The events the tracker decides (all but the clip events). */
export type TrackerEvent = Exclude<ObjectEvent, ClipReadyEvent | ClipFailedEvent>;

export type ObjectEvent =
  | ObjectStartEvent
  | ObjectUpdateEvent
  | ObjectEndEvent
  | ZoneEnterEvent
  | ZoneExitEvent
  | ZoneDwellEvent
  | LineCrossObjectEvent
  | ClipReadyEvent
  | ClipFailedEvent;

/** A clip event before the pipeline stamps it (id and emission time). */
export type ClipEventDraft = Omit<ClipReadyEvent, 'id' | 'atMs'> | Omit<ClipFailedEvent, 'id' | 'atMs'>;

/** An event of the tracker before the pipeline stamps it: no id, emission time, snapshot or clip yet. */
export type ObjectEventDraft = TrackerEvent extends infer E
  ? E extends TrackerEvent
    ? Omit<E, 'id' | 'atMs' | 'snapshot' | 'clip'>
    : never
  : never;

/** Events whose objects get a snapshot (with `output.snapshots`). */
export const SNAPSHOT_EVENT_TYPES: ReadonlySet<ObjectEventType> = new Set(['object.start', 'object.end', 'zone.enter', 'line.cross']);
