import { ByteTracker } from './byte-tracker.js';
import type { Tracker, TrackerOptions } from './types.js';

/**
 * The defaults documented on {@link TrackerOptions}: ByteTrack's, with its 0.8 / 0.5 cost gates as similarity
 * (IoU × score in the first stage, IoU in the second), and a track buffer of 1.5 s rather than its 30 frames.
 */
export const DEFAULT_TRACKER_OPTIONS: Readonly<TrackerOptions> = Object.freeze({
  highScore: 0.5,
  lowScore: 0.1,
  newTrackScore: 0.6,
  matchIou: 0.2,
  lowMatchIou: 0.5,
  minHits: 3,
  maxAgeMs: 1500,
  classAware: true,
});

/**
 * A ByteTrack-style multi-object tracker, usable on its own:
 *
 * ```ts
 * const tracker = createTracker({ maxAgeMs: 2000 });
 * const tracks = tracker.update([{ xyxy: [10, 20, 50, 120], score: 0.9, classId: 0 }], frame.timestampMs);
 * ```
 *
 * Options left out take {@link DEFAULT_TRACKER_OPTIONS}.
 *
 * @throws RangeError naming the option, its value and the allowed range, when an option is out of range, of the
 *   wrong type or unknown (a typo such as `maxAge` would otherwise be silently ignored).
 */
export function createTracker(options: Partial<TrackerOptions> = {}): Tracker {
  return new ByteTracker(resolveTrackerOptions(options));
}

/** Fills in defaults and checks every option; returns a frozen, complete set. @throws RangeError as createTracker. */
export function resolveTrackerOptions(options: Partial<TrackerOptions> = {}): Readonly<TrackerOptions> {
  for (const key of Object.keys(options)) {
    if (!(key in DEFAULT_TRACKER_OPTIONS)) {
      throw new RangeError(`Unknown tracker option "${key}"; expected one of ${Object.keys(DEFAULT_TRACKER_OPTIONS).join(', ')}`);
    }
  }
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const o: TrackerOptions = { ...DEFAULT_TRACKER_OPTIONS, ...defined };
  checkRange('highScore', o.highScore, 0, 1);
  checkRange('lowScore', o.lowScore, 0, o.highScore, `a number in [0, highScore = ${o.highScore}]`);
  checkRange('newTrackScore', o.newTrackScore, 0, 1);
  // An IoU gate of 0 would let boxes that do not overlap at all match.
  checkRange('matchIou', o.matchIou, Number.MIN_VALUE, 1, 'a number in (0, 1]');
  checkRange('lowMatchIou', o.lowMatchIou, Number.MIN_VALUE, 1, 'a number in (0, 1]');
  if (!Number.isSafeInteger(o.minHits) || o.minHits < 1) throw optionError('minHits', o.minHits, 'an integer ≥ 1');
  checkRange('maxAgeMs', o.maxAgeMs, 0, Number.MAX_VALUE, 'a finite number of ms ≥ 0');
  if (typeof o.classAware !== 'boolean') throw optionError('classAware', o.classAware, 'true or false');
  return Object.freeze(o);
}

function checkRange(
  name: keyof TrackerOptions,
  value: unknown,
  min: number,
  max: number,
  expected = `a number in [${min}, ${max}]`,
): void {
  // `!(… && …)` also rejects NaN.
  if (typeof value !== 'number' || !(value >= min && value <= max)) throw optionError(name, value, expected);
}

function optionError(name: keyof TrackerOptions, value: unknown, expected: string): RangeError {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return new RangeError(`Tracker option ${name} is ${shown}; expected ${expected}`);
}
