import { solveAssignment } from './assignment.js';
import { iou } from './iou.js';
import { KalmanBox } from './kalman-box.js';
import type { Track, TrackInput, TrackState, Tracker, TrackerOptions } from './types.js';

interface TrackRecord {
  readonly id: number;
  readonly kalman: KalmanBox;
  readonly firstSeenMs: number;
  classId: number;
  label: string | undefined;
  score: number;
  state: TrackState;
  hits: number;
  lastSeenMs: number;
}

/** How one association stage scores and gates a (track, detection) pair. */
interface StageGate {
  /** Pairs whose similarity is below this are never matched. */
  minSimilarity: number;
  /** Similarity is IoU × detection score (ByteTrack's `fuse_score`) rather than IoU. */
  weighByScore: boolean;
}

/**
 * ByteTrack (Zhang et al. 2022) on time instead of frames. Each update: predict every track to `timeMs`; match
 * high-score detections to all tracks, then low-score ones to the confirmed / lost tracks left over (a partly
 * occluded object's detection often scores low, and matching it keeps the track rather than losing it); start
 * tentative tracks from the unmatched high ones. Assignment minimises Σ (cost − gate) as ByteTrack's
 * `lap.lapjv(cost_limit)` does, so one good pair is never traded for two poor ones (that trade is an id switch).
 *
 * As in ByteTrack (its `fuse_score`, on except for MOT20), the first stage scores a pair by IoU × detection score
 * and gates that at `matchIou`: a false positive, which mostly scores low, must overlap a track about twice as
 * much as a confident detection to take it. Without this, a stray detection landing on a track whose object is
 * hidden (so has no detection of its own to win the assignment) pulls the box off and corrupts its velocity, and
 * the object comes back under a new id. The second stage stays on plain IoU: its detections are low by definition.
 *
 * Unlike ByteTrack, tracks created on the first update are not confirmed at once: every track needs `minHits`
 * matches, so a false positive on the first frame is treated like one on any other (`minHits: 1` confirms at birth).
 * Also unlike it, stage 2 includes lost tracks (ByteTrack's has only tracked ones), so an object coming back from
 * behind an occluder with a low score is picked up again.
 *
 * Use {@link createTracker}, which validates the options.
 */
export class ByteTracker implements Tracker {
  private tracks: TrackRecord[] = [];
  private nextId = 1;
  private lastTimeMs: number | undefined;

  constructor(private readonly options: Readonly<TrackerOptions>) {}

  update(detections: readonly TrackInput[], timeMs: number): Track[] {
    if (!Number.isFinite(timeMs)) throw new RangeError(`Tracker.update: timeMs is ${timeMs}; expected a finite number of ms`);
    if (this.lastTimeMs !== undefined && timeMs < this.lastTimeMs) {
      throw new RangeError(
        `Tracker.update: timeMs went backwards, ${timeMs} after ${this.lastTimeMs}; expected ≥ ${this.lastTimeMs} (call reset() to start a new timeline)`,
      );
    }
    detections.forEach(checkDetection);
    // Every live track was predicted or born at the previous update's time.
    const dtMs = this.lastTimeMs === undefined ? 0 : timeMs - this.lastTimeMs;
    this.lastTimeMs = timeMs;
    const o = this.options;

    for (const t of this.tracks) {
      // A lost track keeps moving but not growing or shrinking: its size velocity came from a box being occluded.
      t.kalman.predict(dtMs, t.state === 'lost');
    }

    // Degenerate boxes overlap nothing and cannot seed a filter; they are ignored like sub-lowScore ones.
    const usable = detections.filter((d) => d.xyxy[2] > d.xyxy[0] && d.xyxy[3] > d.xyxy[1]);
    const high = usable.filter((d) => d.score >= o.highScore);
    const low = usable.filter((d) => d.score >= o.lowScore && d.score < o.highScore);

    const first = this.associate(this.tracks, high, { minSimilarity: o.matchIou, weighByScore: true }, timeMs);
    const secondPool = first.unmatchedTracks.filter((t) => t.state === 'confirmed' || t.state === 'lost');
    const second = this.associate(secondPool, low, { minSimilarity: o.lowMatchIou, weighByScore: false }, timeMs);

    const removed: TrackRecord[] = [];
    for (const t of first.unmatchedTracks) {
      // As in ByteTrack, a tentative track must be matched every frame until confirmed (it is most likely noise).
      if (t.state === 'tentative') removed.push(t);
    }
    for (const t of second.unmatchedTracks) {
      t.state = 'lost';
      if (timeMs - t.lastSeenMs > o.maxAgeMs) removed.push(t);
    }
    for (const t of removed) t.state = 'removed';

    const born: TrackRecord[] = [];
    for (const d of first.unmatchedDetections) {
      if (d.score < o.newTrackScore) continue;
      born.push({
        id: this.nextId++,
        kalman: new KalmanBox(d.xyxy),
        firstSeenMs: timeMs,
        lastSeenMs: timeMs,
        classId: d.classId,
        label: d.label,
        score: d.score,
        hits: 1,
        state: o.minHits <= 1 ? 'confirmed' : 'tentative',
      });
    }

    const out = [...this.tracks, ...born].sort((a, b) => a.id - b.id).map(toTrack);
    this.tracks = [...this.tracks.filter((t) => t.state !== 'removed'), ...born];
    return out;
  }

  reset(): void {
    this.tracks = [];
    this.lastTimeMs = undefined;
  }

  /**
   * One association stage: optimal assignment of `detections` to `tracks` on similarity (IoU, or IoU × score),
   * pairs below `minSimilarity` forbidden.
   */
  private associate(
    tracks: readonly TrackRecord[],
    detections: readonly TrackInput[],
    gate: StageGate,
    timeMs: number,
  ): { unmatchedTracks: TrackRecord[]; unmatchedDetections: TrackInput[] } {
    // A 0 × n matrix cannot say how many columns it has, so solveAssignment would report none unmatched.
    if (tracks.length === 0) return { unmatchedTracks: [], unmatchedDetections: [...detections] };
    const boxes = tracks.map((t) => t.kalman.xyxy);
    const cost = boxes.map((box, i) =>
      detections.map((d) => {
        if (this.options.classAware && d.classId !== tracks[i]?.classId) return Infinity;
        return 1 - iou(box, d.xyxy) * (gate.weighByScore ? d.score : 1);
      }),
    );
    const { matches, unmatchedRows, unmatchedCols } = solveAssignment(cost, 1 - gate.minSimilarity, { objective: 'minCost' });
    for (const [row, col] of matches) {
      const t = tracks[row];
      const d = detections[col];
      if (t === undefined || d === undefined) continue;
      t.kalman.update(d.xyxy);
      t.hits += 1;
      t.lastSeenMs = timeMs;
      t.score = d.score;
      t.classId = d.classId; // only differs when classAware is false: the latest detection's class wins
      if (d.label !== undefined) t.label = d.label;
      if (t.state === 'lost' || t.hits >= this.options.minHits) t.state = 'confirmed';
    }
    return {
      unmatchedTracks: unmatchedRows.flatMap((r) => tracks[r] ?? []),
      unmatchedDetections: unmatchedCols.flatMap((c) => detections[c] ?? []),
    };
  }
}

function checkDetection(d: TrackInput, index: number): void {
  const finite = d.xyxy.length === 4 && d.xyxy.every(Number.isFinite) && Number.isFinite(d.score);
  if (!finite) {
    throw new RangeError(
      `Tracker.update: detection ${index} has xyxy ${JSON.stringify(d.xyxy)} and score ${d.score}; expected four finite coordinates and a finite score`,
    );
  }
}

function toTrack(t: TrackRecord): Track {
  const track: Track = {
    id: t.id,
    xyxy: t.kalman.xyxy,
    classId: t.classId,
    score: t.score,
    state: t.state,
    hits: t.hits,
    firstSeenMs: t.firstSeenMs,
    lastSeenMs: t.lastSeenMs,
    ageMs: t.lastSeenMs - t.firstSeenMs,
  };
  if (t.label !== undefined) track.label = t.label;
  return track;
}
