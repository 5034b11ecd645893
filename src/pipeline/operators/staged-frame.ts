import type { InputTransform } from '../../preprocess/letterbox-geometry.js';
import type { FrameResult } from '../../postprocess/results.js';
import type { TrackedFrame } from '../../tracking/source-tracking.js';
import type { RingSlot } from '../frame-ring.js';
import type { Frame, StageTimingsMs } from '../frame.js';

/** What travels between the operators: the frame plus what each stage added. */
export interface Preprocessed {
  frame: Frame;
  slot: RingSlot;
  transform: InputTransform;
  bytesCopied: number;
  timings: Pick<StageTimingsMs, 'read' | 'preprocess' | 'queue'>;
}

export interface Inferred extends Omit<Preprocessed, 'slot'> {
  output: Float32Array;
  timings: Pick<StageTimingsMs, 'read' | 'preprocess' | 'queue' | 'infer'>;
}

export interface Decoded extends Omit<Inferred, 'output'> {
  result: FrameResult;
  timings: Pick<StageTimingsMs, 'read' | 'preprocess' | 'queue' | 'infer' | 'postprocess'>;
}

export interface Tracked extends Decoded {
  /** null for sources that are not tracked (and for classification models). */
  tracked: TrackedFrame | null;
  timings: Pick<StageTimingsMs, 'read' | 'preprocess' | 'queue' | 'infer' | 'postprocess' | 'track'>;
}
