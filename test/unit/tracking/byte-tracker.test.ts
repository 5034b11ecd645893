import { describe, expect, it } from 'vitest';
import { createTracker, DEFAULT_TRACKER_OPTIONS } from '../../../src/tracking/create-tracker.js';
import { iou } from '../../../src/tracking/iou.js';
import type { Track, TrackInput, TrackerOptions, Xyxy } from '../../../src/tracking/types.js';

const FRAME_MS = 1000 / 30;

function det(xyxy: Xyxy, score = 0.9, classId = 0): TrackInput {
  return { xyxy, score, classId };
}

/** A 40 × 100 box with its top-left corner at (x, y). */
function box(x: number, y = 100): Xyxy {
  return [x, y, x + 40, y + 100];
}

function byId(tracks: readonly Track[], id: number): Track | undefined {
  return tracks.find((t) => t.id === id);
}

/** Feeds the same detection list `frames` times, FRAME_MS apart from `startMs`; returns the last output. */
function feed(tracker: ReturnType<typeof createTracker>, frames: number, startMs: number, at: (tMs: number) => TrackInput[]): Track[] {
  let out: Track[] = [];
  for (let i = 0; i < frames; i++) {
    const t = startMs + i * FRAME_MS;
    out = tracker.update(at(t), t);
  }
  return out;
}

describe('createTracker: lifecycle', () => {
  it('is tentative until minHits matches, then confirmed, with ids from 1', () => {
    const tracker = createTracker({ minHits: 3 });
    const states = [0, 1, 2, 3].map((i) => tracker.update([det(box(10 + i))], i * FRAME_MS));
    expect(states.map((s) => s.map((t) => [t.id, t.state, t.hits]))).toEqual([
      [[1, 'tentative', 1]],
      [[1, 'tentative', 2]],
      [[1, 'confirmed', 3]],
      [[1, 'confirmed', 4]],
    ]);
    const last = states[3]?.[0];
    expect(last).toMatchObject({ classId: 0, score: 0.9, firstSeenMs: 0, lastSeenMs: 3 * FRAME_MS, ageMs: 3 * FRAME_MS });
  });

  it('confirms at once with minHits 1, including on the first frame', () => {
    expect(createTracker({ minHits: 1 }).update([det(box(0))], 0)[0]?.state).toBe('confirmed');
  });

  it('does not confirm first-frame tracks early (every track needs minHits)', () => {
    expect(createTracker().update([det(box(0))], 0)[0]?.state).toBe('tentative');
  });

  it('removes a tentative track missed once, and reports it removed once', () => {
    const tracker = createTracker();
    tracker.update([det(box(0))], 0);
    expect(tracker.update([], 40)).toEqual([expect.objectContaining({ id: 1, state: 'removed' })]);
    expect(tracker.update([], 80)).toEqual([]);
  });

  it('is lost after a miss, removed after maxAgeMs unmatched, reported removed once, and its id never reused', () => {
    const tracker = createTracker({ maxAgeMs: 500 });
    feed(tracker, 5, 0, () => [det(box(0))]);
    const lastSeenMs = 4 * FRAME_MS;
    expect(tracker.update([], lastSeenMs + 100)).toEqual([expect.objectContaining({ id: 1, state: 'lost', lastSeenMs })]);
    expect(tracker.update([], lastSeenMs + 500)[0]?.state).toBe('lost'); // exactly maxAgeMs: not longer than it
    expect(tracker.update([], lastSeenMs + 501)).toEqual([expect.objectContaining({ id: 1, state: 'removed' })]);
    expect(tracker.update([], lastSeenMs + 600)).toEqual([]);
    // The same object again is a new track.
    expect(tracker.update([det(box(0))], lastSeenMs + 700)).toEqual([expect.objectContaining({ id: 2, state: 'tentative' })]);
  });

  it('keeps a lost track through a gap shorter than maxAgeMs and re-confirms it with the same id', () => {
    const tracker = createTracker({ maxAgeMs: 1000 });
    feed(tracker, 5, 0, () => [det(box(0))]);
    expect(tracker.update([], 400)[0]?.state).toBe('lost');
    expect(tracker.update([det(box(0))], 900)).toEqual([expect.objectContaining({ id: 1, state: 'confirmed', hits: 6 })]);
  });

  it('keeps counting ids after reset(), and accepts an earlier time then', () => {
    const tracker = createTracker();
    tracker.update([det(box(0)), det(box(200))], 1000);
    tracker.reset();
    expect(tracker.update([det(box(0))], 0).map((t) => t.id)).toEqual([3]);
  });

  it('returns copies: changing a returned track does not change the tracker', () => {
    const tracker = createTracker();
    const [t] = tracker.update([det(box(0))], 0);
    if (t) t.xyxy[0] = 999;
    expect(tracker.update([det(box(0))], FRAME_MS)[0]?.xyxy[0]).toBeCloseTo(0, 6);
  });
});

describe('createTracker: two-stage association', () => {
  it('a low-score detection keeps an occluded track confirmed instead of losing it', () => {
    for (const lowScore of [0.1, 0.5]) {
      // lowScore = highScore leaves no low band: the same scene then loses the track.
      const tracker = createTracker({ lowScore });
      feed(tracker, 5, 0, (t) => [det(box(10 + t * 0.1))]);
      const occluded = feed(tracker, 10, 5 * FRAME_MS, (t) => [det(box(10 + t * 0.1), 0.3)]);
      expect(occluded).toEqual([expect.objectContaining({ id: 1, state: lowScore === 0.1 ? 'confirmed' : 'lost' })]);
    }
  });

  it('a low-score detection never starts a track, nor does a high one below newTrackScore', () => {
    const tracker = createTracker({ highScore: 0.5, newTrackScore: 0.6 });
    const out = feed(tracker, 10, 0, () => [det(box(0), 0.3), det(box(200), 0.55), det(box(400), 0.05)]);
    expect(out).toEqual([]);
  });

  it('a high-score detection below newTrackScore still updates an existing track', () => {
    const tracker = createTracker();
    feed(tracker, 3, 0, () => [det(box(0), 0.9)]);
    expect(tracker.update([det(box(2), 0.55)], 3 * FRAME_MS)).toEqual([
      expect.objectContaining({ id: 1, state: 'confirmed', score: 0.55, hits: 4 }),
    ]);
  });

  it('a low-score detection does not match a track it barely overlaps (lowMatchIou)', () => {
    const tracker = createTracker();
    feed(tracker, 3, 0, () => [det(box(0))]);
    // IoU of box(0) and box(20) is 1/3: enough for a high detection (× 0.9 = 0.3 ≥ 0.2), not for a low one (0.5).
    expect(tracker.update([det(box(20), 0.3)], 3 * FRAME_MS)[0]?.state).toBe('lost');
  });

  it('a high detection needs IoU × score ≥ matchIou: a weak one barely overlapping a track does not take it', () => {
    // IoU of box(0) and box(20) is 1/3: × 0.9 = 0.3 matches; × 0.55 = 0.18 does not (a stray detection landing on
    // a track whose object is hidden would otherwise pull it away). 0.55 is below newTrackScore: no new track either.
    for (const [score, state] of [[0.9, 'confirmed'], [0.55, 'lost']] as const) {
      const tracker = createTracker();
      feed(tracker, 3, 0, () => [det(box(0))]);
      expect(tracker.update([det(box(20), score)], 3 * FRAME_MS)).toEqual([expect.objectContaining({ id: 1, state })]);
    }
  });
});

describe('createTracker: classes', () => {
  it('keeps classes apart: a detection of another class at the same place is another track', () => {
    const tracker = createTracker();
    feed(tracker, 3, 0, () => [det(box(0), 0.9, 0)]);
    const out = tracker.update([det(box(0), 0.9, 1)], 3 * FRAME_MS);
    expect(out.map((t) => [t.id, t.classId, t.state])).toEqual([
      [1, 0, 'lost'],
      [2, 1, 'tentative'],
    ]);
  });

  it('two overlapping objects of different classes keep their ids', () => {
    const tracker = createTracker();
    // A person walking in front of a parked car: boxes overlap heavily, classes tell them apart.
    const out = feed(tracker, 20, 0, (t) => [det(box(100), 0.9, 2), det(box(80 + t * 0.05), 0.9, 0)]);
    expect(out.map((t) => [t.id, t.classId, t.state])).toEqual([
      [1, 2, 'confirmed'],
      [2, 0, 'confirmed'],
    ]);
  });

  it('with classAware false, matches across classes and takes the latest class', () => {
    const tracker = createTracker({ classAware: false });
    feed(tracker, 3, 0, () => [det(box(0), 0.9, 0)]);
    expect(tracker.update([det(box(0), 0.9, 1)], 3 * FRAME_MS)).toEqual([expect.objectContaining({ id: 1, classId: 1 })]);
  });
});

describe('createTracker: time-based', () => {
  it('does not switch the ids of two objects moving apart when frames are dropped', () => {
    // 100 × 100 boxes, A and B moving right at 0.3 and 0.6 px/ms (10 and 20 px a frame), B ahead. After 500 ms
    // without frames A is exactly where B was last seen: a tracker that predicted one frame's motion instead of
    // 500 ms would give A's detection to B's track.
    const wide = (x: number): Xyxy => [x, 100, x + 100, 200];
    const a = (tMs: number): Xyxy => wide(0.3 * tMs);
    const b = (tMs: number): Xyxy => wide(60 + 0.6 * tMs);
    const tracker = createTracker();
    const lastMs = 300;
    for (let i = 0; i <= 9; i++) tracker.update([det(a(i * (lastMs / 9))), det(b(i * (lastMs / 9)))], i * (lastMs / 9));
    const afterDropMs = lastMs + 500;
    expect(iou(a(afterDropMs), a(lastMs))).toBe(0);
    expect(iou(a(afterDropMs), b(lastMs))).toBeCloseTo(1, 9);

    const out = tracker.update([det(a(afterDropMs)), det(b(afterDropMs))], afterDropMs);
    expect(out.map((t) => [t.id, t.state])).toEqual([
      [1, 'confirmed'],
      [2, 'confirmed'],
    ]);
    expect(iou(byId(out, 1)?.xyxy ?? [0, 0, 0, 0], a(afterDropMs))).toBeGreaterThan(0.8);
    expect(iou(byId(out, 2)?.xyxy ?? [0, 0, 0, 0], b(afterDropMs))).toBeGreaterThan(0.8);
  });

  it('accepts a repeated time, and rejects time going backwards or non-finite', () => {
    const tracker = createTracker();
    tracker.update([det(box(0))], 100);
    expect(tracker.update([det(box(0))], 100)[0]?.hits).toBe(2);
    expect(() => tracker.update([], 99)).toThrow(RangeError);
    expect(() => tracker.update([], 99)).toThrow(/timeMs went backwards, 99 after 100/);
    expect(() => tracker.update([], NaN)).toThrow(/timeMs is NaN/);
  });
});

describe('createTracker: input', () => {
  it('rejects a detection with a non-finite coordinate or score, naming it', () => {
    const tracker = createTracker();
    expect(() => tracker.update([det(box(0)), det([0, 0, NaN, 10])], 0)).toThrow(/detection 1 has xyxy \[0,0,null,10\]/);
    expect(() => tracker.update([det(box(0), NaN)], 0)).toThrow(RangeError);
  });

  it('ignores degenerate boxes', () => {
    expect(createTracker().update([det([10, 10, 10, 50]), det([10, 50, 40, 10])], 0)).toEqual([]);
  });

  it('takes the documented defaults', () => {
    expect(DEFAULT_TRACKER_OPTIONS).toEqual({
      highScore: 0.5,
      lowScore: 0.1,
      newTrackScore: 0.6,
      matchIou: 0.2,
      lowMatchIou: 0.5,
      minHits: 3,
      maxAgeMs: 1500,
      classAware: true,
    });
    expect(() => createTracker({ highScore: undefined })).not.toThrow();
  });

  it.each<{ options: Record<string, unknown>; message: RegExp }>([
    { options: { highScore: 1.5 }, message: /highScore is 1.5; expected a number in \[0, 1\]/ },
    { options: { highScore: NaN }, message: /highScore is NaN/ },
    { options: { lowScore: -0.1 }, message: /lowScore is -0.1; expected a number in \[0, highScore = 0.5\]/ },
    { options: { lowScore: 0.6 }, message: /lowScore is 0.6; expected a number in \[0, highScore = 0.5\]/ },
    { options: { newTrackScore: 2 }, message: /newTrackScore is 2/ },
    { options: { matchIou: 0 }, message: /matchIou is 0; expected a number in \(0, 1\]/ },
    { options: { lowMatchIou: 1.1 }, message: /lowMatchIou is 1.1/ },
    { options: { minHits: 0 }, message: /minHits is 0; expected an integer ≥ 1/ },
    { options: { minHits: 2.5 }, message: /minHits is 2.5/ },
    { options: { maxAgeMs: -1 }, message: /maxAgeMs is -1; expected a finite number of ms ≥ 0/ },
    { options: { maxAgeMs: Infinity }, message: /maxAgeMs is Infinity/ },
    { options: { maxAgeMs: '1000' }, message: /maxAgeMs is "1000"/ },
    { options: { classAware: 'yes' }, message: /classAware is "yes"; expected true or false/ },
    { options: { maxAge: 1000 }, message: /Unknown tracker option "maxAge"; expected one of highScore/ },
  ])('rejects $options', ({ options, message }) => {
    const create = (): unknown => createTracker(options as Partial<TrackerOptions>);
    expect(create).toThrow(RangeError);
    expect(create).toThrow(message);
  });
});
