import { z } from 'zod';
import type { Track, Xyxy } from './types.js';

/**
 * Zones and lines of one source, as config (`source.zones`, `source.lines`), and what their shared keys mean:
 * the anchor point, the class filter and the hysteresis. Coordinates are image coordinates: x to the right,
 * y downwards, in pixels or in fractions (0..1) of the frame's width / height.
 */

/** [x, y] in image coordinates (y grows downwards). */
export type PointXy = readonly [x: number, y: number];

const MAX_POLYGON_POINTS = 1000;
const MAX_SHAPES_PER_SOURCE = 100;

const PointSchema = z.tuple([z.number(), z.number()]);
const NameSchema = z.string().min(1).max(64);

const common = {
  /** px: frame pixels; fraction: 0..1 of the frame's width (x) and height (y), resolved when the frame size is known. */
  units: z.enum(['px', 'fraction']).default('px'),
  /** Only tracks whose label (or class id written as a string) is listed; omit for every class. */
  classes: z.array(z.string().min(1)).min(1, 'list at least one class, or omit `classes` for all').optional(),
  /** The point of the box that is tested: bottom-center = (cx, y2), where feet are. */
  anchor: z.enum(['bottom-center', 'center', 'top-center']).default('bottom-center'),
  /** Hysteresis: a change (inside ↔ outside, side to side) counts only after this many consecutive updates… */
  minFrames: z.number().int().min(1).max(1000).default(3),
  /** …and after at least this many ms from the first of them (both must hold), so boundary jitter never flickers. */
  minMs: z.number().min(0).max(600_000).default(0),
};

export const ZoneSchema = z
  .strictObject({
    /** Unique among the source's zones; events and metrics carry it. */
    name: NameSchema,
    /** The outline, at least 3 distinct points; closed implicitly (last → first). Concave and self-touching are fine. */
    polygon: z.array(PointSchema).min(3).max(MAX_POLYGON_POINTS),
    ...common,
    /** Emit one `zone.dwell` per stay once a track has been inside this long; omit for none. */
    dwellMs: z.number().positive().optional(),
  })
  .superRefine((zone, ctx) => {
    checkFractions(zone.units, zone.polygon, ['polygon'], ctx);
    const distinct = new Set(zone.polygon.map((p) => `${p[0]},${p[1]}`)).size;
    if (zone.polygon.length < 3) return; // the length check has said so
    if (distinct < 3) {
      const message = `a polygon needs at least 3 distinct points (it has ${distinct})`;
      ctx.addIssue({ code: 'custom', path: ['polygon'], message });
    } else if (!hasArea(zone.polygon)) {
      const message = 'the polygon has zero area (its points are on one line, or it only retraces itself)';
      ctx.addIssue({ code: 'custom', path: ['polygon'], message });
    }
  }, { when: pointsParsed('polygon') });

export const LineSchema = z
  .strictObject({
    /** Unique among the source's lines; events, metrics and counts carry it. */
    name: NameSchema,
    /**
     * The directed segment from → to. Walking along it from `from` to `to` as drawn on the screen, a crossing from
     * your left hand to your right hand is `in`, the other way `out`: for a line drawn left → right, moving down the
     * image is `in`; for one drawn top → bottom, moving to the left is `in`. Swap the ends to swap the names.
     */
    from: PointSchema,
    to: PointSchema,
    ...common,
    /**
     * An anchor nearer the line than this fraction of its box's height is too close to tell which side it is on: the
     * frame holds (it neither starts nor cancels a side change). A detector's box edge is only known to a few
     * percent of the box, so without this a person standing on the line, or a box swelling as two people overlap,
     * can count as a crossing. 0 = every side counts.
     */
    marginFraction: z.number().min(0).max(1).default(0.1),
  })
  .superRefine((line, ctx) => {
    checkFractions(line.units, [line.from], ['from'], ctx);
    checkFractions(line.units, [line.to], ['to'], ctx);
    if (line.from[0] === line.to[0] && line.from[1] === line.to[1]) {
      ctx.addIssue({ code: 'custom', path: ['to'], message: 'the line has zero length (`to` equals `from`)' });
    }
  }, { when: pointsParsed('from', 'to') });

/** A source's zones (`source.zones`); names unique within the list. Default none. */
export const ZonesSchema = z
  .array(ZoneSchema)
  .max(MAX_SHAPES_PER_SOURCE)
  .superRefine(uniqueNames('zone'), { when: isArrayPayload })
  .default([]);

/** A source's lines (`source.lines`); names unique within the list (a zone and a line may share one). Default none. */
export const LinesSchema = z
  .array(LineSchema)
  .max(MAX_SHAPES_PER_SOURCE)
  .superRefine(uniqueNames('line'), { when: isArrayPayload })
  .default([]);

export type ZoneConfig = z.output<typeof ZoneSchema>;
export type ZoneConfigInput = z.input<typeof ZoneSchema>;
export type LineConfig = z.output<typeof LineSchema>;
export type LineConfigInput = z.input<typeof LineSchema>;
export type AnchorName = ZoneConfig['anchor'];
/** The hysteresis keys, as the zone tracker and the line counter read them. */
export type HoldRule = Pick<ZoneConfig, 'minFrames' | 'minMs'>;
/** A zone whose coordinates are frame pixels. */
export type ResolvedZone = Omit<ZoneConfig, 'units' | 'polygon'> & { units: 'px'; polygon: PointXy[] };
/** A line whose coordinates are frame pixels. */
export type ResolvedLine = Omit<LineConfig, 'units' | 'from' | 'to'> & { units: 'px'; from: PointXy; to: PointXy };

/** Turns fraction units into pixels of a `frameSizeWh` frame; pixel shapes are copied unchanged. */
export function resolveGeometry(
  zones: readonly ZoneConfig[],
  lines: readonly LineConfig[],
  frameSizeWh: readonly [width: number, height: number],
): { zones: ResolvedZone[]; lines: ResolvedLine[] } {
  const [w, h] = frameSizeWh;
  if (!(w > 0 && h > 0 && Number.isFinite(w) && Number.isFinite(h))) {
    throw new RangeError(`resolveGeometry: frameSizeWh must be two positive numbers, got [${w}, ${h}]`);
  }
  const px = (units: 'px' | 'fraction', p: PointXy): PointXy => (units === 'px' ? [p[0], p[1]] : [p[0] * w, p[1] * h]);
  return {
    zones: zones.map((zone) => ({ ...zone, units: 'px', polygon: zone.polygon.map((p) => px(zone.units, p)) })),
    lines: lines.map((line) => ({ ...line, units: 'px', from: px(line.units, line.from), to: px(line.units, line.to) })),
  };
}

/**
 * The point of a box that zones and lines test (the `anchor` key). With `frameSizeWh` it is clamped into
 * [0, w] × [0, h]: the tracker's prediction runs past the frame as an object leaves, and a zone drawn up to the
 * frame's edge should still hold it.
 */
export function anchorPoint(xyxy: Xyxy, anchor: AnchorName, frameSizeWh?: readonly [number, number]): PointXy {
  const [x1, y1, x2, y2] = xyxy;
  const x = (x1 + x2) / 2;
  const y = anchor === 'bottom-center' ? y2 : anchor === 'top-center' ? y1 : (y1 + y2) / 2;
  if (frameSizeWh === undefined) return [x, y];
  return [Math.min(Math.max(x, 0), frameSizeWh[0]), Math.min(Math.max(y, 0), frameSizeWh[1])];
}

/** The key a track is counted under: its label, or its class id as a string when it has none. */
export function classKey(track: Pick<Track, 'classId' | 'label'>): string {
  return track.label ?? String(track.classId);
}

/** The `classes` key: matches a track's label or its class id written as a string; undefined matches all. */
export function matchesClasses(classes: readonly string[] | undefined, track: Pick<Track, 'classId' | 'label'>): boolean {
  return classes === undefined || classes.includes(classKey(track)) || classes.includes(String(track.classId));
}

/** A debounced value: `stable` changes only after a different raw value has held for the rule's frames and ms. */
export interface Held<T> {
  stable: T;
  pending: { value: T; sinceMs: number; frames: number } | null;
}

/**
 * The hysteresis keys. Feeds one observation: a raw value equal to `stable` cancels the pending change (jitter back
 * across a boundary never counts), a new one starts a run. Returns the run that just became stable (its value and
 * its first frame's time) once `frames ≥ minFrames` and `timeMs − sinceMs ≥ minMs`; else null.
 */
export function observeHeld<T>(held: Held<T>, raw: T, timeMs: number, rule: HoldRule): { value: T; sinceMs: number } | null {
  if (raw === held.stable) {
    held.pending = null;
    return null;
  }
  if (held.pending?.value !== raw) held.pending = { value: raw, sinceMs: timeMs, frames: 0 };
  const run = held.pending;
  run.frames += 1;
  if (run.frames < rule.minFrames || timeMs - run.sinceMs < rule.minMs) return null;
  held.stable = raw;
  held.pending = null;
  return { value: raw, sinceMs: run.sinceMs };
}

function checkFractions(units: string, points: readonly PointXy[], path: (string | number)[], ctx: z.RefinementCtx): void {
  if (units !== 'fraction') return;
  points.forEach((p, i) =>
    p.forEach((v, axis) => {
      if (v >= 0 && v <= 1) return;
      const where = path[0] === 'polygon' ? [...path, i, axis] : [...path, axis];
      const message = `with units: fraction, coordinates are 0..1 of the frame's ${axis === 0 ? 'width' : 'height'}`;
      ctx.addIssue({ code: 'custom', path: where, message });
    }),
  );
}

/**
 * Zero area: every point on one line, or an outline that only goes back over itself (each edge a→b matched by an
 * edge b→a). A bow-tie has zero signed area but two real lobes, so the signed area alone would wrongly reject it.
 */
function hasArea(polygon: readonly PointXy[]): boolean {
  const [a, ...rest] = polygon;
  const b = rest.find((p) => p[0] !== a?.[0] || p[1] !== a[1]);
  if (a === undefined || b === undefined) return false;
  // Relative tolerance: fractions such as 0.1 / 0.2 / 0.3 are not exactly collinear in floating point.
  const ab = Math.hypot(b[0] - a[0], b[1] - a[1]);
  const collinear = rest.every((p) => {
    const crossAbAp = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
    return Math.abs(crossAbAp) <= 1e-9 * ab * Math.hypot(p[0] - a[0], p[1] - a[1]);
  });
  if (collinear) return false;
  const edges = new Map<string, number>();
  polygon.forEach((p, i) => {
    const q = polygon[(i + 1) % polygon.length] ?? p;
    if (p[0] === q[0] && p[1] === q[1]) return;
    const forward = `${p[0]},${p[1]}>${q[0]},${q[1]}`;
    const backward = `${q[0]},${q[1]}>${p[0]},${p[1]}`;
    const unmatched = edges.get(backward) ?? 0;
    if (unmatched > 0) edges.set(backward, unmatched - 1);
    else edges.set(forward, (edges.get(forward) ?? 0) + 1);
  });
  return [...edges.values()].some((n) => n > 0);
}

/**
 * Geometry checks run once the points themselves parsed, even if another key (say `anchor`) is wrong, so one run
 * lists every problem.
 */
function pointsParsed(...keys: string[]) {
  const isPoint = (p: unknown): boolean => Array.isArray(p) && p.length === 2 && p.every((v) => Number.isFinite(v));
  return (payload: { value: unknown }): boolean => {
    const value = payload.value as Record<string, unknown> | null;
    return keys.every((key) => {
      const v = value?.[key];
      return key === 'polygon' ? Array.isArray(v) && v.every(isPoint) : isPoint(v);
    });
  };
}

/** Duplicate names are reported even when another entry is invalid, so one run lists every problem. */
function isArrayPayload(payload: { value: unknown }): boolean {
  return Array.isArray(payload.value);
}

function uniqueNames(kind: 'zone' | 'line') {
  return (items: unknown[], ctx: z.RefinementCtx): void => {
    const firstIndex = new Map<string, number>();
    items.forEach((item, i) => {
      const name = (item as { name?: unknown } | null)?.name;
      if (typeof name !== 'string') return;
      const first = firstIndex.get(name);
      if (first === undefined) {
        firstIndex.set(name, i);
        return;
      }
      const message = `duplicate ${kind} name "${name}" (also ${kind}s.${first}); names must be unique within a source`;
      ctx.addIssue({ code: 'custom', path: [i, 'name'], message });
    });
  };
}
