import type { Observable } from 'rxjs';
import type { Frame } from '../pipeline/frame.js';
import type { DropReason, SourceStateEvent } from './source-state.js';

export interface SourceInfo {
  kind: 'file' | 'live';
  /** For logs, events, file names and metrics; never contains credentials. */
  id: string;
  /** [0, 0] until a live source has delivered its first frame. */
  sizeWh: [number, number];
  fps: number;
  /** Total frames when the container says so, else null (always null for live sources). */
  frameCount: number | null;
}

/** Something frames are pulled from, one at a time. `read` resolves null when the source has ended for good. */
export interface FrameSource {
  readonly info: SourceInfo;
  /** Frames not run, by reason; the pipeline adds its own (stale) drops here too. */
  readonly drops: Record<DropReason, number>;
  /** Live sources: connecting / live / stalled / backoff / stopped. */
  readonly states$?: Observable<SourceStateEvent>;
  /** Live sources start capturing here (files need no start). */
  start?(): void;
  /**
   * Live sources: resolves true once a frame waits (read() then returns it at once), false once the source has
   * ended. The pipeline waits here without holding any shared capacity, and takes an in-flight permit only then.
   */
  frameReady?(): Promise<boolean>;
  /** Live sources: why the source gave up (state `failed`), once it has. */
  readonly failure?: Error | undefined;
  read(): Promise<Frame | null>;
  /**
   * Files: frames delivered so far. When `read` resolves null with fewer than `info.frameCount`, the file ended
   * early (the pipeline reports VP_SOURCE_TRUNCATED unless source.allowTruncated).
   */
  readonly framesRead?: number;
  /** Stops reading and releases the capture (waits for a read in progress to return first). */
  close(): Promise<void>;
}

export function noDrops(): Record<DropReason, number> {
  return { 'ring-full': 0, stale: 0, 'decode-error': 0, 'fps-cap': 0, 'queue-full': 0, 'inference-error': 0 };
}
