/**
 * The tracker's value types, shared by the tracker, the zone / line logic and the evaluation. Boxes are `xyxy` in
 * frame pixels; times are milliseconds (the tracker is time-based, not frame-based, so dropped live frames and
 * `maxFps` do not break it).
 */

export type Xyxy = [x1: number, y1: number, x2: number, y2: number];

/** One detection as the tracker takes it (the pipeline's Detection has these fields). */
export interface TrackInput {
  xyxy: Xyxy;
  score: number;
  classId: number;
  label?: string;
}

/**
 * tentative: seen, not yet `minHits` times; confirmed: a real object (ids are only shown for these);
 * lost: confirmed, unmatched for less than `maxAgeMs` (kept, predicted); removed: gone for good (reported once).
 */
export type TrackState = 'tentative' | 'confirmed' | 'lost' | 'removed';

export interface Track {
  /** Stable for the life of the track; assigned in creation order from 1. */
  id: number;
  /** The filtered box (the Kalman estimate after this update; the prediction while lost). */
  xyxy: Xyxy;
  classId: number;
  label?: string;
  /** Score of the detection last matched. */
  score: number;
  state: TrackState;
  /** Times a detection was matched to it. */
  hits: number;
  firstSeenMs: number;
  lastSeenMs: number;
  /** lastSeenMs − firstSeenMs. */
  ageMs: number;
}

export interface TrackerOptions {
  /** Detections at or above this score are matched first (ByteTrack's high set). Default 0.5. */
  highScore: number;
  /** Detections below this are ignored; between lowScore and highScore they are matched second. Default 0.1. */
  lowScore: number;
  /** An unmatched high detection starts a track only at or above this score. Default 0.6. */
  newTrackScore: number;
  /**
   * Minimum IoU × detection score for a first-stage match (ByteTrack's `fuse_score`): a detection scoring 0.9 needs
   * IoU ≥ 0.22 with the track, one scoring 0.5 IoU ≥ 0.4, so a low-scoring false positive rarely takes over a track
   * whose object is hidden. Default 0.2.
   */
  matchIou: number;
  /** Minimum IoU for a second-stage (low-score) match. Default 0.5. */
  lowMatchIou: number;
  /** Matches needed before a track is confirmed. Default 3. */
  minHits: number;
  /**
   * A track unmatched for longer than this is removed; until then it is `lost` and can take its object back with
   * the same id. Default 1500 ms: people hide behind one another for 1–2 s, and a live source dropping frames adds
   * to the gap. Longer keeps ids through longer occlusions but lets a wrong detection take a stale track.
   */
  maxAgeMs: number;
  /** Only detections of the track's class can match it. Default true. */
  classAware: boolean;
}

/** A multi-object tracker: feed it each frame's detections with the frame's time, get the tracks back. */
export interface Tracker {
  /**
   * Associates `detections` (one frame, at `timeMs`, which must not go backwards) with the tracks. Returns the
   * tracks that are tentative, confirmed or lost after this frame, plus those removed by it (state `removed`,
   * reported once).
   */
  update(detections: readonly TrackInput[], timeMs: number): Track[];
  /** Forgets every track (ids keep counting up). */
  reset(): void;
}
