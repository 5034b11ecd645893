import type { Mat } from '../cv.js';
import type { FrameResult } from '../postprocess/results.js';
import type { Track } from '../tracking/types.js';

/** A decoded frame as it leaves its source (BGR, 8-bit). Owned by the pipeline, released after the sinks. */
export interface Frame {
  sourceId: string;
  /** 0-based index within its source. */
  index: number;
  /** Media time of the frame within its source. */
  timestampMs: number;
  sizeWh: [number, number];
  mat: Mat;
  /** performance.now() when the read finished; the start of the frame's latency. */
  readAtMs: number;
  /** Time spent decoding / reading this frame. */
  readMs: number;
}

/** Per-stage time for one frame, in milliseconds. */
export interface StageTimingsMs {
  read: number;
  preprocess: number;
  /** Waiting for a ring slot and for the worker to reach this frame. */
  queue: number;
  infer: number;
  postprocess: number;
  /** Tracking, zones and lines (0 for sources that are not tracked). */
  track: number;
  annotate: number;
  write: number;
}

/** What the model said about one frame, as emitted to subscribers and written to the events file. */
export interface Prediction {
  sourceId: string;
  frameIndex: number;
  timestampMs: number;
  sizeWh: [number, number];
  result: FrameResult;
  /** Tracked sources: the objects followed in this frame (confirmed tracks, seen now or predicted while lost). */
  tracks?: Track[];
  /** read → prediction emitted. */
  latencyMs: number;
  timingsMs: Omit<StageTimingsMs, 'write'>;
}

/** A frame with its prediction, after annotation; `frame.mat` is valid only until the sinks are done with it. */
export interface AnnotatedFrame {
  frame: Frame;
  prediction: Prediction;
}
