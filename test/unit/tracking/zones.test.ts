import { describe, expect, it } from 'vitest';
import { ZoneSchema, anchorPoint, resolveGeometry, type PointXy, type ResolvedZone, type ZoneConfigInput } from '../../../src/tracking/geometry-schema.js';
import type { Track, TrackState } from '../../../src/tracking/types.js';
import { ZoneTracker, pointInPolygon, type ZoneEvent } from '../../../src/tracking/zones.js';

const square: PointXy[] = [
  [0, 0],
  [10, 0],
  [10, 10],
  [0, 10],
];
// A U with its arms down: the notch is x 10..20, y 10..30, open at the bottom (y 30).
const uShape: PointXy[] = [
  [0, 0],
  [30, 0],
  [30, 30],
  [20, 30],
  [20, 10],
  [10, 10],
  [10, 30],
  [0, 30],
];
// Two triangles meeting at (2, 2), traced as one outline.
const pinched: PointXy[] = [
  [0, 0],
  [4, 0],
  [2, 2],
  [4, 4],
  [0, 4],
  [2, 2],
];
const pentagram: PointXy[] = [
  [50, 0],
  [79, 90],
  [2, 35],
  [98, 35],
  [21, 90],
];
const diamond: PointXy[] = [
  [5, 0],
  [10, 5],
  [5, 10],
  [0, 5],
];

describe('pointInPolygon', () => {
  it.each<{ name: string; polygon: PointXy[]; p: PointXy; inside: boolean }>([
    { name: 'square centre', polygon: square, p: [5, 5], inside: true },
    { name: 'square outside', polygon: square, p: [15, 5], inside: false },
    { name: 'on an edge', polygon: square, p: [10, 5], inside: true },
    { name: 'on the closing edge', polygon: square, p: [0, 5], inside: true },
    { name: 'on a vertex', polygon: square, p: [10, 10], inside: true },
    { name: 'just outside an edge', polygon: square, p: [10.000001, 5], inside: false },
    { name: 'U: left arm', polygon: uShape, p: [5, 25], inside: true },
    { name: 'U: right arm', polygon: uShape, p: [25, 25], inside: true },
    { name: 'U: in the notch', polygon: uShape, p: [15, 20], inside: false },
    { name: 'U: notch mouth (on the open side, outside)', polygon: uShape, p: [15, 30], inside: false },
    { name: 'U: notch floor (an edge)', polygon: uShape, p: [15, 10], inside: true },
    { name: 'U: ray through two reflex vertices', polygon: uShape, p: [-5, 10], inside: false },
    { name: 'pinched: lower lobe', polygon: pinched, p: [2, 1], inside: true },
    { name: 'pinched: upper lobe', polygon: pinched, p: [2, 3], inside: true },
    { name: 'pinched: the touching point', polygon: pinched, p: [2, 2], inside: true },
    { name: 'pinched: beside the touching point', polygon: pinched, p: [1, 2], inside: false },
    { name: 'pinched: other side of it', polygon: pinched, p: [3, 2], inside: false },
    { name: 'pentagram centre (wound twice: nonzero rule)', polygon: pentagram, p: [50, 50], inside: true },
    { name: 'pentagram point', polygon: pentagram, p: [50, 10], inside: true },
    { name: 'pentagram outside', polygon: pentagram, p: [10, 80], inside: false },
    { name: 'diamond: ray through both side vertices, left', polygon: diamond, p: [-1, 5], inside: false },
    { name: 'diamond: ray through both side vertices, inside', polygon: diamond, p: [3, 5], inside: true },
    { name: 'diamond: level with the top vertex', polygon: diamond, p: [2, 0], inside: false },
  ])('$name', ({ polygon, p, inside }) => {
    expect(pointInPolygon(p, polygon)).toBe(inside);
    expect(pointInPolygon(p, [...polygon].reverse())).toBe(inside); // orientation does not matter
  });
});

describe('anchorPoint', () => {
  it.each<{ name: string; anchor: 'bottom-center' | 'center' | 'top-center'; frame?: [number, number]; want: PointXy }>([
    { name: 'bottom-center is (cx, y2)', anchor: 'bottom-center', want: [630, 490] },
    { name: 'center', anchor: 'center', want: [630, 445] },
    { name: 'top-center is (cx, y1)', anchor: 'top-center', want: [630, 400] },
    { name: 'clamped to the frame edge', anchor: 'bottom-center', frame: [640, 480], want: [630, 480] },
    { name: 'inside the frame: unchanged', anchor: 'top-center', frame: [640, 480], want: [630, 400] },
  ])('$name', ({ anchor, frame, want }) => {
    expect(anchorPoint([600, 400, 660, 490], anchor, frame)).toEqual(want);
  });

  it('clamps a box past the left and top edges', () => {
    expect(anchorPoint([-50, -30, -10, -5], 'center', [640, 480])).toEqual([0, 0]);
  });
});

/** A track whose bottom-centre anchor is `at`. */
function track(id: number, at: PointXy, extra: Partial<Track> = {}): Track {
  const [x, y] = at;
  return { id, xyxy: [x - 10, y - 40, x + 10, y], classId: 0, label: 'person', score: 0.9, state: 'confirmed', hits: 5, firstSeenMs: 0, lastSeenMs: 0, ageMs: 0, ...extra };
}

function zone(input: Partial<ZoneConfigInput>): ResolvedZone {
  const parsed = ZoneSchema.parse({ name: 'z', polygon: [[0, 0], [100, 0], [100, 100], [0, 100]], ...input });
  const resolved = resolveGeometry([parsed], [], [1000, 1000]).zones[0];
  if (resolved === undefined) throw new Error('unreachable');
  return resolved;
}

const IN: PointXy = [50, 50];
const OUT: PointXy = [150, 50];
const EDGE: PointXy = [100, 50];

/** Feeds one track's anchor positions, one per `stepMs`, and returns every event with the frame index it came at. */
function drive(tracker: ZoneTracker, path: PointXy[], stepMs = 100, extra: Partial<Track> = {}): (ZoneEvent & { frame: number })[] {
  return path.flatMap((at, frame) => tracker.update([track(1, at, { lastSeenMs: frame * stepMs, ...extra })], frame * stepMs).map((e) => ({ ...e, frame })));
}

describe('ZoneTracker', () => {
  it.each<{ name: string; rule: Partial<ZoneConfigInput>; path: PointXy[]; stepMs?: number; want: [type: string, frame: number, sinceMs: number][] }>([
    { name: 'enter after minFrames', rule: { minFrames: 3 }, path: [OUT, IN, IN, IN, IN], want: [['zone.enter', 3, 100]] },
    { name: 'minFrames 1: at once', rule: { minFrames: 1 }, path: [OUT, IN, OUT], want: [['zone.enter', 1, 100], ['zone.exit', 2, 200]] },
    { name: 'boundary flicker never counts', rule: { minFrames: 3 }, path: [OUT, IN, OUT, IN, IN, OUT, IN, OUT, IN, IN, OUT], want: [] },
    { name: 'a run broken by jitter restarts', rule: { minFrames: 3 }, path: [IN, IN, OUT, IN, IN, IN], want: [['zone.enter', 5, 300]] },
    { name: 'exit needs the same hold', rule: { minFrames: 2 }, path: [IN, IN, OUT, IN, OUT, OUT], want: [['zone.enter', 1, 0], ['zone.exit', 5, 400]] },
    { name: 'on the edge counts as inside', rule: { minFrames: 2 }, path: [EDGE, EDGE, OUT], want: [['zone.enter', 1, 0]] },
    { name: 'by ms: 300 ms at 100 ms a frame', rule: { minFrames: 1, minMs: 300 }, path: [IN, IN, IN, IN, IN], want: [['zone.enter', 3, 0]] },
    { name: 'by ms: a slow camera needs fewer frames', rule: { minFrames: 1, minMs: 300 }, stepMs: 500, path: [IN, IN], want: [['zone.enter', 1, 0]] },
    { name: 'frames and ms must both hold (frames late)', rule: { minFrames: 3, minMs: 100 }, stepMs: 1000, path: [IN, IN, IN], want: [['zone.enter', 2, 0]] },
    { name: 'frames and ms must both hold (ms late)', rule: { minFrames: 2, minMs: 450 }, path: [IN, IN, IN, IN, IN, IN], want: [['zone.enter', 5, 0]] },
  ])('$name', ({ rule, path, stepMs, want }) => {
    const events = drive(new ZoneTracker({ zones: [zone(rule)] }), path, stepMs);
    expect(events.map((e) => [e.type, e.frame, e.sinceMs])).toEqual(want);
  });

  it('exit carries the stay and the reason; events carry the track', () => {
    const events = drive(new ZoneTracker({ zones: [zone({ minFrames: 2 })] }), [IN, IN, IN, OUT, OUT]);
    expect(events[1]).toEqual({ type: 'zone.exit', zone: 'z', trackId: 1, classId: 0, label: 'person', atMs: 400, sinceMs: 300, dwellMs: 300, reason: 'left', frame: 4 });
  });

  it('dwells once per stay, after dwellMs from the start of the stay', () => {
    const path = [...Array<PointXy>(30).fill(IN), OUT, OUT, ...Array<PointXy>(15).fill(IN)];
    const events = drive(new ZoneTracker({ zones: [zone({ minFrames: 2, dwellMs: 1000 })] }), path);
    expect(events.map((e) => [e.type, e.atMs, e.dwellMs])).toEqual([
      ['zone.enter', 100, undefined],
      ['zone.dwell', 1000, 1000],
      ['zone.exit', 3100, 3000],
      ['zone.enter', 3300, undefined],
      ['zone.dwell', 4200, 1000],
    ]);
  });

  it('does not dwell while an exit is pending, and dwells when the track comes back', () => {
    const path: PointXy[] = [IN, IN, IN, OUT, OUT, IN, IN];
    const events = drive(new ZoneTracker({ zones: [zone({ minFrames: 3, dwellMs: 350 })] }), path);
    expect(events.map((e) => [e.type, e.atMs])).toEqual([
      ['zone.enter', 200],
      ['zone.dwell', 500],
    ]);
  });

  it('a removed track that was inside exits, and is forgotten', () => {
    const tracker = new ZoneTracker({ zones: [zone({ minFrames: 1 })] });
    tracker.update([track(1, IN), track(2, OUT)], 0);
    tracker.update([track(1, IN, { lastSeenMs: 100 }), track(2, OUT)], 100);
    expect(tracker.occupancy('z').total).toBe(1);
    const events = tracker.update([track(1, IN, { state: 'removed', lastSeenMs: 100 }), track(2, OUT, { state: 'removed' })], 1200);
    expect(events).toEqual([{ type: 'zone.exit', zone: 'z', trackId: 1, classId: 0, label: 'person', atMs: 1200, sinceMs: 100, dwellMs: 100, reason: 'track-ended' }]);
    expect(tracker.trackCount).toBe(0);
    expect(tracker.occupancy('z')).toEqual({ total: 0, byClass: {} });
  });

  it('a removed track on its way out exits from when it was first seen outside', () => {
    const tracker = new ZoneTracker({ zones: [zone({ minFrames: 3 })] });
    drive(tracker, [IN, IN, IN, OUT]);
    expect(tracker.update([track(1, OUT, { state: 'removed', lastSeenMs: 300 })], 900)).toMatchObject([{ type: 'zone.exit', sinceMs: 300, dwellMs: 300 }]);
  });

  it.each<{ state: TrackState; want: string[] }>([
    { state: 'lost', want: [] },
    { state: 'tentative', want: [] },
    { state: 'confirmed', want: ['zone.exit'] },
  ])('a $state track outside does not move the state unless confirmed', ({ state, want }) => {
    const tracker = new ZoneTracker({ zones: [zone({ minFrames: 1 })] });
    tracker.update([track(1, IN)], 0);
    expect(tracker.update([track(1, OUT, { state })], 100).map((e) => e.type)).toEqual(want);
  });

  it('ignores tentative tracks entirely', () => {
    const tracker = new ZoneTracker({ zones: [zone({ minFrames: 1 })] });
    expect(tracker.update([track(1, IN, { state: 'tentative' })], 0)).toEqual([]);
    expect(tracker.trackCount).toBe(0);
  });

  it('forgets a track that stops being reported (caller drops removed tracks), exiting it', () => {
    const tracker = new ZoneTracker({ zones: [zone({ minFrames: 1 })], forgetAfterMs: 2000 });
    tracker.update([track(1, IN)], 0);
    expect(tracker.update([], 2000)).toEqual([]);
    expect(tracker.update([], 2001)).toMatchObject([{ type: 'zone.exit', trackId: 1, reason: 'track-ended' }]);
    expect(tracker.trackCount).toBe(0);
  });

  it('keeps memory bounded over many short tracks', () => {
    const tracker = new ZoneTracker({ zones: [zone({ minFrames: 1 })] });
    for (let id = 1; id <= 1000; id++) {
      tracker.update([track(id, IN)], id * 10);
      tracker.update([track(id, IN, { state: 'removed' })], id * 10 + 5);
    }
    expect(tracker.trackCount).toBe(0);
  });

  it('filters by class (label or class id) and counts occupancy by class', () => {
    const tracker = new ZoneTracker({
      zones: [zone({ name: 'people', minFrames: 1, classes: ['person', '7'] }), zone({ name: 'all', minFrames: 1 })],
    });
    const events = tracker.update(
      [track(1, IN), track(2, IN), track(3, IN, { label: 'car', classId: 2 }), track(4, IN, { label: undefined, classId: 7 })],
      0,
    );
    expect(events.map((e) => `${e.zone}:${e.trackId}`)).toEqual(['people:1', 'all:1', 'people:2', 'all:2', 'all:3', 'people:4', 'all:4']);
    expect(tracker.occupancy('people')).toEqual({ total: 3, byClass: { person: 2, '7': 1 } });
    expect(tracker.occupancy('all')).toEqual({ total: 4, byClass: { person: 2, car: 1, '7': 1 } });
    tracker.update([track(1, OUT), track(2, IN), track(3, OUT, { label: 'car', classId: 2 }), track(4, IN, { label: undefined, classId: 7 })], 100);
    expect(tracker.occupancy('all')).toEqual({ total: 2, byClass: { person: 1, '7': 1 } });
  });

  it('an anchor at the frame edge is in a zone drawn (in fractions) up to that edge', () => {
    const parsed = ZoneSchema.parse({ name: 'bottom', units: 'fraction', minFrames: 1, polygon: [[0, 0.5], [1, 0.5], [1, 1], [0, 1]] });
    const { zones } = resolveGeometry([parsed], [], [640, 480]);
    const leaving: Track = { ...track(1, [0, 0]), xyxy: [600, 420, 660, 530] }; // predicted past the bottom-right corner
    expect(new ZoneTracker({ zones }).update([leaving], 0)).toEqual([]); // unclamped: (630, 530) is outside
    expect(new ZoneTracker({ zones, frameSizeWh: [640, 480] }).update([leaving], 0)).toMatchObject([{ type: 'zone.enter', zone: 'bottom' }]);
  });

  it('rejects time going backwards and unknown zone names', () => {
    const tracker = new ZoneTracker({ zones: [zone({})] });
    tracker.update([], 100);
    expect(() => tracker.update([], 99)).toThrow(/timeMs went backwards/);
    expect(() => tracker.occupancy('nope')).toThrow(/no zone named "nope"/);
  });

  it('reset forgets tracks and empties zones', () => {
    const tracker = new ZoneTracker({ zones: [zone({ minFrames: 1 })] });
    tracker.update([track(1, IN)], 100);
    tracker.reset();
    expect(tracker.trackCount).toBe(0);
    expect(tracker.occupancy('z').total).toBe(0);
    expect(tracker.update([track(1, IN)], 0)).toHaveLength(1);
  });
});
