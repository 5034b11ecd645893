import type { SourceConfig } from '../../config/schema.js';

/**
 * Messages between a live source (main process) and its capture process. The URI travels over the IPC channel,
 * never on the command line, so credentials do not show in `ps`.
 */
export interface CaptureSettings {
  uri: string;
  capture: SourceConfig['capture'];
  /** Frames per second passed on at most; null = every frame. */
  maxFps: number | null;
  /** latest: hold only the newest frame until the parent takes it; all: queue up to maxQueuedFrames. */
  backpressure: 'latest' | 'all';
  maxQueuedFrames: number;
}

export type ToCapture =
  /** Connect (once, first message). */
  | { type: 'open'; settings: CaptureSettings }
  /** Flow control: the parent has taken the last frame and can receive the next (a window of one frame). */
  | { type: 'ack' }
  /** Stop reading, release the capture and exit. */
  | { type: 'close' };

/** Frames the capture process did not pass on, by reason (cumulative for the life of the process). */
export interface CaptureDrops {
  /** Replaced by a newer frame while the parent had not yet taken the previous one. */
  'ring-full': number;
  'decode-error': number;
  /** Skipped to keep within maxFps. */
  'fps-cap': number;
  /** Backpressure `all`: the queue was full, the oldest frame went. */
  'queue-full': number;
}

export type FromCapture =
  /** The stream is open (VideoCapture constructed); frames follow. */
  | { type: 'opened'; fps: number }
  | {
      type: 'frame';
      /** Epoch ms when the read finished. */
      capturedAtMs: number;
      /** Time the read (decode) took. */
      readMs: number;
      rows: number;
      cols: number;
      /** BGR, 8 bits per channel, rows × cols × 3 bytes. */
      data: Uint8Array;
      drops: CaptureDrops;
    }
  /**
   * Frames are arriving but none is passed on (skipped by maxFps): the camera is alive. At most one a second, so a
   * low maxFps never looks like a stalled camera to the parent's watchdog.
   */
  | { type: 'alive'; drops: CaptureDrops }
  /** The capture is over (the process exits after this): why, and the final drop counts. */
  | { type: 'ended'; reason: string; connected: boolean; drops: CaptureDrops };

export function noCaptureDrops(): CaptureDrops {
  return { 'ring-full': 0, 'decode-error': 0, 'fps-cap': 0, 'queue-full': 0 };
}
