import {
  anchorPoint,
  classKey,
  matchesClasses,
  observeHeld,
  type Held,
  type PointXy,
  type ResolvedZone,
} from './geometry-schema.js';
import type { Track } from './types.js';

/**
 * Zones over tracks: which confirmed track is in which polygon, with hysteresis, as enter / exit / dwell events and
 * per-class occupancy. Pure logic: no video, time is a parameter.
 */

/** Max distance (px) from an edge that still counts as "on" it; absorbs float rounding, not real distance. */
const ON_EDGE_EPSILON_PX = 1e-9;

/**
 * Inside-or-on test. A point on an edge or vertex is inside, so an anchor at the frame's edge is in a zone drawn up
 * to that edge. Otherwise the nonzero winding rule: right for concave polygons, for self-touching ones (the pinch
 * point is on an edge, the region between the lobes is outside), and a region the outline loops round twice (a
 * pentagram's centre) is inside. The closing edge (last → first point) is implied.
 */
export function pointInPolygon(point: PointXy, polygon: readonly PointXy[]): boolean {
  return onPolygonEdge(point, polygon) || windingNumber(point, polygon) !== 0;
}

/** How many times the closed outline winds around `point` (Sunday's crossing rule; sign depends on orientation). */
export function windingNumber(point: PointXy, polygon: readonly PointXy[]): number {
  const [, py] = point;
  let winding = 0;
  let a = polygon.at(-1);
  for (const b of polygon) {
    if (a !== undefined) {
      // Half-open in y, so a ray through a vertex counts the two edges meeting there once, not twice.
      if (a[1] <= py) {
        if (b[1] > py && cross(a, b, point) > 0) winding += 1;
      } else if (b[1] <= py && cross(a, b, point) < 0) {
        winding -= 1;
      }
    }
    a = b;
  }
  return winding;
}

/** True when `point` lies on an edge of the closed outline (within float rounding). */
export function onPolygonEdge(point: PointXy, polygon: readonly PointXy[]): boolean {
  let a = polygon.at(-1);
  for (const b of polygon) {
    if (a !== undefined && onSegment(point, a, b)) return true;
    a = b;
  }
  return false;
}

function onSegment(p: PointXy, a: PointXy, b: PointXy): boolean {
  const lengthPx = Math.hypot(b[0] - a[0], b[1] - a[1]);
  if (lengthPx === 0) return p[0] === a[0] && p[1] === a[1];
  if (Math.abs(cross(a, b, p)) / lengthPx > ON_EDGE_EPSILON_PX) return false;
  const e = ON_EDGE_EPSILON_PX;
  return (
    p[0] >= Math.min(a[0], b[0]) - e &&
    p[0] <= Math.max(a[0], b[0]) + e &&
    p[1] >= Math.min(a[1], b[1]) - e &&
    p[1] <= Math.max(a[1], b[1]) + e
  );
}

/** (b − a) × (p − a): > 0 when p is right of a→b as seen on screen (image y grows downwards). */
export function cross(a: PointXy, b: PointXy, p: PointXy): number {
  return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
}

/** A zone event. Events of one track share `trackId`; in one update they come in track order, then zone order. */
export interface ZoneEvent {
  type: 'zone.enter' | 'zone.exit' | 'zone.dwell';
  zone: string;
  trackId: number;
  classId: number;
  label?: string;
  /** Time of the frame that decided the event; later than `sinceMs` by the hysteresis. */
  atMs: number;
  /**
   * When the change began. enter: the first frame of the inside run that held; exit: the first frame outside (or
   * when last seen, if the track ended); dwell: the start of the stay.
   */
  sinceMs: number;
  /** exit: length of the stay (exit's sinceMs − enter's sinceMs); dwell: length so far (atMs − enter's sinceMs). */
  dwellMs?: number;
  /** exit only. left: walked out; track-ended: the track was removed (or stopped being reported) while inside. */
  reason?: 'left' | 'track-ended';
}

/** Tracks inside a zone now, in total and by class key (label, or class id as a string). */
export interface ZoneOccupancy {
  total: number;
  byClass: Record<string, number>;
}

export interface ZoneTrackerOptions {
  /** In pixels (see resolveGeometry). */
  zones: readonly ResolvedZone[];
  /** Clamp anchors into the frame (see anchorPoint); omit to test them as they are. */
  frameSizeWh?: readonly [number, number];
  /**
   * A track absent from every update for longer than this is treated as ended, so memory stays bounded for callers
   * that drop `removed` tracks. Default 10 000 ms.
   */
  forgetAfterMs?: number;
}

interface Stay {
  held: Held<boolean>;
  enteredMs: number;
  dwellSent: boolean;
  /** The class key the stay was counted under, so the exit un-counts the same one. */
  countedAs: string;
}

interface Entry {
  track: Track;
  updatedMs: number;
  /** Per zone index; undefined where the zone's class filter excludes the track. */
  stays: (Stay | undefined)[];
}

/**
 * Turns each frame's tracks into zone events. Only `confirmed` tracks move; `lost` ones hold their state (a
 * prediction is not a sighting); `tentative` ones are ignored; a `removed` track that was inside exits. Memory is
 * one entry per live track: ended tracks are forgotten.
 */
export class ZoneTracker {
  readonly #zones: readonly ResolvedZone[];
  readonly #frameSizeWh: readonly [number, number] | undefined;
  readonly #forgetAfterMs: number;
  readonly #entries = new Map<number, Entry>();
  readonly #occupancy: Map<string, number>[];
  #lastTimeMs = -Infinity;

  constructor(options: ZoneTrackerOptions) {
    this.#zones = options.zones;
    this.#frameSizeWh = options.frameSizeWh;
    this.#forgetAfterMs = options.forgetAfterMs ?? 10_000;
    this.#occupancy = this.#zones.map(() => new Map());
  }

  /** One frame's tracks at `timeMs` (must not go backwards) → the zone events it decides. */
  update(tracks: readonly Track[], timeMs: number): ZoneEvent[] {
    if (timeMs < this.#lastTimeMs) throw new RangeError(`ZoneTracker: timeMs went backwards (${timeMs} < ${this.#lastTimeMs})`);
    this.#lastTimeMs = timeMs;
    const events: ZoneEvent[] = [];
    for (const track of tracks) {
      const entry = this.#entries.get(track.id);
      if (track.state === 'removed') {
        if (entry !== undefined) this.#end({ ...entry, track }, timeMs, events);
      } else if (track.state === 'lost') {
        if (entry !== undefined) entry.updatedMs = timeMs;
      } else if (track.state === 'confirmed') {
        const live = entry ?? this.#create(track);
        live.track = track;
        live.updatedMs = timeMs;
        live.stays.forEach((stay, i) => {
          if (stay !== undefined) this.#observe(live, stay, i, timeMs, events);
        });
      }
    }
    for (const entry of this.#entries.values()) {
      if (timeMs - entry.updatedMs > this.#forgetAfterMs) this.#end(entry, timeMs, events);
    }
    return events;
  }

  /** Who is inside `zoneName` now. */
  occupancy(zoneName: string): ZoneOccupancy {
    const i = this.#zones.findIndex((z) => z.name === zoneName);
    const counts = this.#occupancy[i];
    if (counts === undefined) throw new RangeError(`ZoneTracker: no zone named "${zoneName}"`);
    const byClass = Object.fromEntries(counts);
    return { total: Object.values(byClass).reduce((a, b) => a + b, 0), byClass };
  }

  /** Tracks remembered now (bounded by the live tracks). */
  get trackCount(): number {
    return this.#entries.size;
  }

  /** Forgets every track and empties every zone, without events. */
  reset(): void {
    this.#entries.clear();
    for (const counts of this.#occupancy) counts.clear();
    this.#lastTimeMs = -Infinity;
  }

  #create(track: Track): Entry {
    const stays = this.#zones.map((zone) =>
      matchesClasses(zone.classes, track)
        ? { held: { stable: false, pending: null }, enteredMs: 0, dwellSent: false, countedAs: '' }
        : undefined,
    );
    const entry = { track, updatedMs: 0, stays };
    this.#entries.set(track.id, entry);
    return entry;
  }

  #observe(entry: Entry, stay: Stay, i: number, timeMs: number, events: ZoneEvent[]): void {
    const zone = this.#zones[i];
    if (zone === undefined) return;
    const inside = pointInPolygon(anchorPoint(entry.track.xyxy, zone.anchor, this.#frameSizeWh), zone.polygon);
    const changed = observeHeld(stay.held, inside, timeMs, zone);
    if (changed?.value === true) {
      Object.assign(stay, { enteredMs: changed.sinceMs, dwellSent: false, countedAs: classKey(entry.track) });
      this.#count(i, stay.countedAs, +1);
      events.push(zoneEvent('zone.enter', zone.name, entry.track, timeMs, changed.sinceMs));
    } else if (changed?.value === false) {
      this.#count(i, stay.countedAs, -1);
      const dwellMs = changed.sinceMs - stay.enteredMs;
      events.push(zoneEvent('zone.exit', zone.name, entry.track, timeMs, changed.sinceMs, { dwellMs, reason: 'left' }));
    }
    // Not while an exit is pending: a track on its way out has not "stayed"; if it comes back, dwell fires then.
    const staying = stay.held.stable && stay.held.pending === null && !stay.dwellSent;
    if (staying && zone.dwellMs !== undefined && timeMs - stay.enteredMs >= zone.dwellMs) {
      stay.dwellSent = true;
      const dwellMs = timeMs - stay.enteredMs;
      events.push(zoneEvent('zone.dwell', zone.name, entry.track, timeMs, stay.enteredMs, { dwellMs }));
    }
  }

  #end(entry: Entry, timeMs: number, events: ZoneEvent[]): void {
    entry.stays.forEach((stay, i) => {
      const zone = this.#zones[i];
      if (stay?.held.stable !== true || zone === undefined) return;
      const pending = stay.held.pending;
      // Left when it was first seen outside, if an exit was under way; else when it was last seen at all.
      const leftMs = pending !== null ? pending.sinceMs : Math.min(Math.max(entry.track.lastSeenMs, stay.enteredMs), timeMs);
      this.#count(i, stay.countedAs, -1);
      const extra = { dwellMs: leftMs - stay.enteredMs, reason: 'track-ended' as const };
      events.push(zoneEvent('zone.exit', zone.name, entry.track, timeMs, leftMs, extra));
    });
    this.#entries.delete(entry.track.id);
  }

  #count(i: number, key: string, delta: 1 | -1): void {
    const counts = this.#occupancy[i];
    if (counts === undefined) return;
    const n = (counts.get(key) ?? 0) + delta;
    if (n > 0) counts.set(key, n);
    else counts.delete(key);
  }
}

function zoneEvent(
  type: ZoneEvent['type'],
  zone: string,
  track: Track,
  atMs: number,
  sinceMs: number,
  extra: Pick<ZoneEvent, 'dwellMs' | 'reason'> = {},
): ZoneEvent {
  const label = track.label === undefined ? {} : { label: track.label };
  return { type, zone, trackId: track.id, classId: track.classId, ...label, atMs, sinceMs, ...extra };
}
