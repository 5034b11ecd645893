import { describe, expect, it } from 'vitest';
import { LineSchema, resolveGeometry, type LineConfigInput, type PointXy, type ResolvedLine } from '../../../src/tracking/geometry-schema.js';
import { LineCounter, pathCrossesSegment, sideOfLine, type LineCrossEvent } from '../../../src/tracking/lines.js';
import type { Track, TrackState } from '../../../src/tracking/types.js';

// The gate: drawn left → right along y = 100, from x 0 to x 200. Moving down the image crosses it `in`.
const FROM: PointXy = [0, 100];
const TO: PointXy = [200, 100];

describe('sideOfLine (image coordinates, y down)', () => {
  it.each<{ name: string; from: PointXy; to: PointXy; p: PointXy; want: -1 | 0 | 1 }>([
    { name: 'drawn left → right: below is right', from: FROM, to: TO, p: [50, 150], want: 1 },
    { name: 'drawn left → right: above is left', from: FROM, to: TO, p: [50, 50], want: -1 },
    { name: 'exactly on the segment', from: FROM, to: TO, p: [50, 100], want: 0 },
    { name: 'exactly on the line beyond the segment', from: FROM, to: TO, p: [500, 100], want: 0 },
    { name: 'drawn top → bottom: left of the screen is right', from: [100, 0], to: [100, 200], p: [50, 50], want: 1 },
    { name: 'drawn top → bottom: right of the screen is left', from: [100, 0], to: [100, 200], p: [150, 50], want: -1 },
    { name: 'diagonal, exact on it', from: [0, 0], to: [3, 3], p: [1.5, 1.5], want: 0 },
  ])('$name', ({ from, to, p, want }) => {
    expect(sideOfLine(p, from, to)).toBe(want);
  });
});

describe('pathCrossesSegment', () => {
  it.each<{ name: string; q: PointXy; p: PointXy; want: boolean }>([
    { name: 'through the middle', q: [100, 90], p: [100, 110], want: true },
    { name: 'slanted, through the middle', q: [0, 0], p: [200, 200], want: true },
    { name: 'exactly through the start', q: [0, 90], p: [0, 110], want: true },
    { name: 'exactly through the end', q: [190, 90], p: [210, 110], want: true },
    { name: 'just beyond the end', q: [200.5, 90], p: [200.5, 110], want: false },
    { name: 'before the start', q: [-10, 0], p: [-10, 200], want: false },
  ])('$name', ({ q, p, want }) => {
    expect(pathCrossesSegment(q, p, FROM, TO)).toBe(want);
    expect(pathCrossesSegment(p, q, FROM, TO)).toBe(want);
  });
});

/** A line with no margin unless given: the hysteresis cases below test the hold alone. */
function line(input: Partial<LineConfigInput> = {}): ResolvedLine {
  const parsed = LineSchema.parse({ name: 'gate', from: FROM, to: TO, marginFraction: 0, ...input });
  const resolved = resolveGeometry([], [parsed], [1000, 1000]).lines[0];
  if (resolved === undefined) throw new Error('unreachable');
  return resolved;
}

/** A track whose bottom-centre anchor is `at`. */
function track(id: number, at: PointXy, extra: Partial<Track> = {}): Track {
  const [x, y] = at;
  return { id, xyxy: [x - 10, y - 40, x + 10, y], classId: 0, label: 'person', score: 0.9, state: 'confirmed', hits: 5, firstSeenMs: 0, lastSeenMs: 0, ageMs: 0, ...extra };
}

/** Feeds one track's anchor positions (x 100 unless given), one per 100 ms; returns [direction, frame, sinceMs] per crossing. */
function drive(counter: LineCounter, path: (number | PointXy)[], states: TrackState[] = []): [string, number, number][] {
  return path.flatMap((at, frame) => {
    const point: PointXy = typeof at === 'number' ? [100, at] : at;
    const events = counter.update([track(1, point, { state: states[frame] ?? 'confirmed' })], frame * 100);
    return events.map((e): [string, number, number] => [e.direction, frame, e.sinceMs]);
  });
}

describe('LineCounter', () => {
  it.each<{ name: string; rule?: Partial<LineConfigInput>; path: (number | PointXy)[]; states?: TrackState[]; want: [string, number, number][] }>([
    { name: 'down across a left → right line is in', path: [70, 80, 90, 110, 120, 130], want: [['in', 5, 300]] },
    { name: 'up across it is out', path: [130, 120, 110, 90, 80, 70], want: [['out', 5, 300]] },
    { name: 'no hysteresis: counted at once', rule: { minFrames: 1 }, path: [90, 110], want: [['in', 1, 100]] },
    { name: 'exactly on the line keeps the previous side', rule: { minFrames: 1 }, path: [90, 100, 100, 110], want: [['in', 3, 300]] },
    { name: 'onto the line and back: nothing', rule: { minFrames: 1 }, path: [90, 100, 90, 100, 90], want: [] },
    { name: 'born on the line, then below: no side before, no crossing', rule: { minFrames: 1 }, path: [100, 100, 110], want: [] },
    { name: 'on-line frames count toward the hold', rule: { minFrames: 3 }, path: [90, 90, 90, 110, 100, 100], want: [['in', 5, 300]] },
    { name: 're-crossing jitter counts once', rule: { minFrames: 3 }, path: [90, 90, 90, 105, 95, 105, 95, 105, 110, 115, 120], want: [['in', 9, 700]] },
    { name: 'jitter that settles back: nothing', rule: { minFrames: 3 }, path: [90, 90, 90, 105, 95, 105, 95, 95, 95, 95], want: [] },
    { name: 'in then out again, each held', rule: { minFrames: 2 }, path: [90, 90, 110, 110, 90, 90], want: [['in', 3, 200], ['out', 5, 400]] },
    { name: 'hysteresis by ms', rule: { minFrames: 1, minMs: 250 }, path: [90, 90, 90, 90, 110, 110, 110, 110], want: [['in', 7, 400]] },
    { name: 'born beside the line: not a crossing', rule: { minFrames: 1 }, path: [120, 130], want: [] },
    { name: 'first side not yet held when it flips: not a crossing', rule: { minFrames: 3 }, path: [90, 110, 110, 110], want: [] },
    { name: 'first side held by ms before the flip: a crossing', rule: { minFrames: 1, minMs: 150 }, path: [90, 90, 90, 110, 110, 110], want: [['in', 5, 300]] },
    { name: 'across the infinite line beyond the end: not counted', rule: { minFrames: 1 }, path: [[300, 90], [300, 110]], want: [] },
    { name: 'around the end, then back through the segment: out', rule: { minFrames: 1 }, path: [[300, 90], [300, 110], [100, 110], [100, 90]], want: [['out', 3, 300]] },
    { name: 'exactly through the end point: counted', rule: { minFrames: 1 }, path: [[190, 90], [210, 110]], want: [['in', 1, 100]] },
    { name: 'path from the last off-line point through an on-line frame beyond the end', rule: { minFrames: 1 }, path: [[100, 90], [400, 100], [400, 110]], want: [] },
    { name: 'lost frames hold; the path from the last sighting counts', rule: { minFrames: 2 }, path: [90, 90, 300, 300, 110, 120], states: ['confirmed', 'confirmed', 'lost', 'lost'], want: [['in', 5, 400]] },
    { name: 'tentative frames are ignored', rule: { minFrames: 1 }, path: [90, 110, 120], states: ['tentative', 'tentative'], want: [] },
    { name: 'removed before the new side held: not counted', rule: { minFrames: 3 }, path: [90, 90, 90, 110, 110, 110], states: ['confirmed', 'confirmed', 'confirmed', 'confirmed', 'removed', 'confirmed'], want: [] },
  ])('$name', ({ rule, path, states, want }) => {
    expect(drive(new LineCounter({ lines: [line(rule)] }), path, states)).toEqual(want);
  });

  // The track's box is 40 px tall: marginFraction 0.1 = 4 px either side of the line at y = 100.
  it.each<{ name: string; path: number[]; want: [string, number, number][] }>([
    { name: 'feet hovering within the margin, on both sides: nothing', path: [90, 90, 90, 102, 99, 103, 98, 101, 90, 90], want: [] },
    { name: 'a box that swells 3 px past the line and back: nothing', path: [90, 90, 90, 97, 103, 103, 103, 97, 90], want: [] },
    { name: 'a real crossing: counted once, timed when the feet went over', path: [80, 85, 90, 98, 102, 110, 115, 120], want: [['in', 7, 400]] },
    { name: 'margin frames neither start nor cancel a change', path: [90, 90, 90, 110, 101, 110, 99, 110], want: [['in', 7, 300]] },
  ])('margin: $name', ({ path, want }) => {
    const counter = new LineCounter({ lines: [line({ marginFraction: 0.1 })] });
    expect(drive(counter, path)).toEqual(want);
  });

  it('a line drawn top → bottom counts right-to-left as in', () => {
    const counter = new LineCounter({ lines: [line({ from: [100, 0], to: [100, 200], minFrames: 1 })] });
    expect(drive(counter, [[150, 50], [50, 50], [150, 50]]).map(([d]) => d)).toEqual(['in', 'out']);
  });

  it('keeps running counts per class and direction, as copies in each event', () => {
    const counter = new LineCounter({ lines: [line({ minFrames: 1 }), line({ name: 'cars', minFrames: 1, classes: ['car'] })] });
    const car = { label: 'car', classId: 2 };
    const events: LineCrossEvent[] = [];
    events.push(...counter.update([track(1, [50, 90]), track(2, [60, 90], car), track(3, [70, 110])], 0));
    events.push(...counter.update([track(1, [50, 110]), track(2, [60, 110], car), track(3, [70, 90])], 100));
    expect(events.map((e) => `${e.line}:${e.trackId}:${e.direction}`)).toEqual(['gate:1:in', 'gate:2:in', 'cars:2:in', 'gate:3:out']);
    expect(events[0]).toEqual({
      type: 'line.cross',
      line: 'gate',
      trackId: 1,
      classId: 0,
      label: 'person',
      direction: 'in',
      atMs: 100,
      sinceMs: 100,
      counts: { in: 1, out: 0, byClass: { person: { in: 1, out: 0 } } },
    });
    expect(counter.counts('gate')).toEqual({ in: 2, out: 1, byClass: { person: { in: 1, out: 1 }, car: { in: 1, out: 0 } } });
    expect(counter.counts('cars')).toEqual({ in: 1, out: 0, byClass: { car: { in: 1, out: 0 } } });
    counter.counts('gate').in = 99; // a copy
    expect(counter.counts('gate').in).toBe(2);
  });

  it('an anchor clamped to the frame edge crosses a line that ends at the edge', () => {
    const parsed = LineSchema.parse({ name: 'mid', units: 'fraction', from: [0.5, 0], to: [0.5, 1], minFrames: 1 });
    const { lines } = resolveGeometry([], [parsed], [640, 480]);
    // Feet below the frame's bottom edge (a box predicted past it), walking right to left across x = 320.
    const at = (x: number): Track => ({ ...track(1, [0, 0]), xyxy: [x - 10, 450, x + 10, 520] });
    const unclamped = new LineCounter({ lines });
    expect([...unclamped.update([at(340)], 0), ...unclamped.update([at(300)], 100)]).toEqual([]);
    const clamped = new LineCounter({ lines, frameSizeWh: [640, 480] });
    expect([...clamped.update([at(340)], 0), ...clamped.update([at(300)], 100)]).toMatchObject([{ direction: 'in', line: 'mid' }]);
  });

  it('forgets removed and vanished tracks (bounded memory)', () => {
    const counter = new LineCounter({ lines: [line()], forgetAfterMs: 1000 });
    for (let id = 1; id <= 500; id++) {
      counter.update([track(id, [100, 90])], id);
      counter.update([track(id, [100, 90], { state: 'removed' })], id);
    }
    expect(counter.trackCount).toBe(0);
    counter.update([track(1000, [100, 90])], 1000);
    counter.update([track(1000, [100, 90], { state: 'lost' })], 1900); // lost still counts as reported
    counter.update([], 2900);
    expect(counter.trackCount).toBe(1);
    counter.update([], 2901);
    expect(counter.trackCount).toBe(0);
  });

  it('rejects time going backwards and unknown line names; reset zeroes counts', () => {
    const counter = new LineCounter({ lines: [line({ minFrames: 1 })] });
    drive(counter, [90, 110]);
    expect(() => counter.update([], 50)).toThrow(/timeMs went backwards/);
    expect(() => counter.counts('nope')).toThrow(/no line named "nope"/);
    counter.reset();
    expect(counter.counts('gate')).toEqual({ in: 0, out: 0, byClass: {} });
    expect(counter.trackCount).toBe(0);
  });
});
