import {
  anchorPoint,
  classKey,
  matchesClasses,
  observeHeld,
  type Held,
  type PointXy,
  type ResolvedLine,
} from './geometry-schema.js';
import type { Track } from './types.js';
import { cross } from './zones.js';

/**
 * Directed counting lines over tracks. A track's anchor has a side of the line; a crossing counts when the side
 * changes through the segment itself and the new side then holds for the line's hysteresis. Pure logic: no video,
 * time is a parameter.
 */

/** 1 = right of from → to as seen on the screen (y grows downwards), −1 = left, 0 = exactly on the infinite line. */
export type Side = -1 | 0 | 1;

/** The sign of (to − from) × (p − from), exactly (no tolerance: "on the line" is rare and merely keeps the side). */
export function sideOfLine(p: PointXy, from: PointXy, to: PointXy): Side {
  return Math.sign(cross(from, to, p)) as Side;
}

/** Distance from p to the infinite line through from and to, in pixels. */
export function distanceToLine(p: PointXy, from: PointXy, to: PointXy): number {
  return Math.abs(cross(from, to, p)) / Math.hypot(to[0] - from[0], to[1] - from[1]);
}

/**
 * Whether the straight path q → p, whose ends are strictly on opposite sides of the line, meets the segment
 * from → to. Passing exactly through an end of the segment counts; passing beyond it does not.
 */
export function pathCrossesSegment(q: PointXy, p: PointXy, from: PointXy, to: PointXy): boolean {
  const d: PointXy = [to[0] - from[0], to[1] - from[1]];
  const e: PointXy = [p[0] - q[0], p[1] - q[1]];
  const denominator = d[0] * e[1] - d[1] * e[0];
  if (denominator === 0) return false; // parallel: cannot have ends on opposite sides
  // Where the path meets the infinite line, as a fraction u of the way from `from` to `to`.
  const u = ((q[0] - from[0]) * e[1] - (q[1] - from[1]) * e[0]) / denominator;
  return u >= 0 && u <= 1;
}

/** Running counts of one line: totals and by class key (label, or class id as a string). */
export interface LineCounts {
  in: number;
  out: number;
  byClass: Record<string, { in: number; out: number }>;
}

/** A counted crossing. Events of one track share `trackId`. */
export interface LineCrossEvent {
  type: 'line.cross';
  line: string;
  trackId: number;
  classId: number;
  label?: string;
  /** in: from the left of from → to to its right, as seen on the screen; out: the other way (see LineSchema). */
  direction: 'in' | 'out';
  /** Time of the frame that confirmed the crossing (the new side had held for the hysteresis). */
  atMs: number;
  /**
   * When the anchor went over the line: the first frame of the run on the new side that held, or earlier, when the
   * anchor was already over but still within the margin.
   */
  sinceMs: number;
  /** This line's counts including this crossing (a copy). */
  counts: LineCounts;
}

export interface LineCounterOptions {
  /** In pixels (see resolveGeometry). */
  lines: readonly ResolvedLine[];
  /** Clamp anchors into the frame (see anchorPoint); omit to test them as they are. */
  frameSizeWh?: readonly [number, number];
  /**
   * A track absent from every update for longer than this is forgotten, so memory stays bounded for callers that
   * drop `removed` tracks. Default 10 000 ms.
   */
  forgetAfterMs?: number;
}

interface LineState {
  /** The confirmed side; 0 until the first side has held (a track born beside a line has not crossed it). */
  held: Held<Side>;
  /** The latest side seen, kept when the anchor is exactly on the line. */
  raw: Side;
  /** The latest anchor strictly off the line: the start of the path tested against the segment on a side change. */
  lastOffLine: PointXy | null;
  /** Whether the latest raw side change went through the segment (a pending run always starts with one). */
  flipCrossedSegment: boolean;
  /** The side of the latest sighting, margin or not, and when the anchor last went over to it: the crossing's time. */
  nearSide: Side;
  nearSideSinceMs: number;
}

interface Entry {
  updatedMs: number;
  /** Per line index; undefined where the line's class filter excludes the track. */
  states: (LineState | undefined)[];
}

/**
 * Counts tracks crossing directed lines. Only `confirmed` tracks move; `lost` ones hold (a prediction is not a
 * sighting; the path from the last sighting to the next is what gets tested); `tentative` ones are ignored;
 * `removed` ones are forgotten, and a crossing not yet confirmed then does not count.
 */
export class LineCounter {
  readonly #lines: readonly ResolvedLine[];
  readonly #frameSizeWh: readonly [number, number] | undefined;
  readonly #forgetAfterMs: number;
  readonly #entries = new Map<number, Entry>();
  readonly #counts: LineCounts[];
  #lastTimeMs = -Infinity;

  constructor(options: LineCounterOptions) {
    this.#lines = options.lines;
    this.#frameSizeWh = options.frameSizeWh;
    this.#forgetAfterMs = options.forgetAfterMs ?? 10_000;
    this.#counts = this.#lines.map(() => ({ in: 0, out: 0, byClass: {} }));
  }

  /** One frame's tracks at `timeMs` (must not go backwards) → the crossings it confirms. */
  update(tracks: readonly Track[], timeMs: number): LineCrossEvent[] {
    if (timeMs < this.#lastTimeMs) throw new RangeError(`LineCounter: timeMs went backwards (${timeMs} < ${this.#lastTimeMs})`);
    this.#lastTimeMs = timeMs;
    const events: LineCrossEvent[] = [];
    for (const track of tracks) {
      const entry = this.#entries.get(track.id);
      if (track.state === 'removed') {
        this.#entries.delete(track.id);
      } else if (track.state === 'lost') {
        if (entry !== undefined) entry.updatedMs = timeMs;
      } else if (track.state === 'confirmed') {
        const live = entry ?? this.#create(track);
        live.updatedMs = timeMs;
        live.states.forEach((state, i) => {
          if (state !== undefined) this.#observe(track, state, i, timeMs, events);
        });
      }
    }
    for (const [id, entry] of this.#entries) {
      if (timeMs - entry.updatedMs > this.#forgetAfterMs) this.#entries.delete(id);
    }
    return events;
  }

  /** The running counts of `lineName` (a copy). */
  counts(lineName: string): LineCounts {
    const counts = this.#counts[this.#lines.findIndex((l) => l.name === lineName)];
    if (counts === undefined) throw new RangeError(`LineCounter: no line named "${lineName}"`);
    return copyCounts(counts);
  }

  /** Tracks remembered now (bounded by the live tracks). */
  get trackCount(): number {
    return this.#entries.size;
  }

  /** Forgets every track and zeroes every count. */
  reset(): void {
    this.#entries.clear();
    this.#counts.forEach((c) => Object.assign(c, { in: 0, out: 0, byClass: {} }));
    this.#lastTimeMs = -Infinity;
  }

  #create(track: Track): Entry {
    const states = this.#lines.map((line) =>
      matchesClasses(line.classes, track)
        ? { held: { stable: 0 as Side, pending: null }, raw: 0 as Side, lastOffLine: null, flipCrossedSegment: false, nearSide: 0 as Side, nearSideSinceMs: 0 }
        : undefined,
    );
    const entry = { updatedMs: 0, states };
    this.#entries.set(track.id, entry);
    return entry;
  }

  #observe(track: Track, state: LineState, i: number, timeMs: number, events: LineCrossEvent[]): void {
    const line = this.#lines[i];
    const counts = this.#counts[i];
    if (line === undefined || counts === undefined) return;
    const p = anchorPoint(track.xyxy, line.anchor, this.#frameSizeWh);
    const strict = sideOfLine(p, line.from, line.to);
    if (strict !== 0 && strict !== state.nearSide) Object.assign(state, { nearSide: strict, nearSideSinceMs: timeMs });
    const marginPx = line.marginFraction * (track.xyxy[3] - track.xyxy[1]);
    if (marginPx > 0 && distanceToLine(p, line.from, line.to) < marginPx) return; // too close to tell: holds
    if (strict !== 0) {
      if (state.raw !== 0 && strict !== state.raw && state.lastOffLine !== null) {
        state.flipCrossedSegment = pathCrossesSegment(state.lastOffLine, p, line.from, line.to);
      }
      state.lastOffLine = p;
      state.raw = strict;
    }
    if (state.raw === 0) return; // only ever seen exactly on the line: no side yet
    const before = state.held.stable;
    const changed = observeHeld(state.held, state.raw, timeMs, line);
    if (changed === null || before === 0 || !state.flipCrossedSegment) return;
    const direction = changed.value === 1 ? 'in' : 'out';
    const key = classKey(track);
    const byClass = (counts.byClass[key] ??= { in: 0, out: 0 });
    counts[direction] += 1;
    byClass[direction] += 1;
    const label = track.label === undefined ? {} : { label: track.label };
    events.push({
      type: 'line.cross',
      line: line.name,
      trackId: track.id,
      classId: track.classId,
      ...label,
      direction,
      atMs: timeMs,
      // When it went over the line itself, which may be before it got clear of the margin.
      sinceMs: state.nearSide === changed.value ? Math.min(state.nearSideSinceMs, changed.sinceMs) : changed.sinceMs,
      counts: copyCounts(counts),
    });
  }
}

function copyCounts(c: LineCounts): LineCounts {
  const byClass = Object.fromEntries(Object.entries(c.byClass).map(([k, v]) => [k, { ...v }]));
  return { in: c.in, out: c.out, byClass };
}
