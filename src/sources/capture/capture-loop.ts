import { cv, type Mat } from '../../cv.js';
import { messageOf } from '../../errors.js';
import { redactUri } from '../redact-uri.js';
import { noCaptureDrops, type CaptureSettings, type FromCapture, type ToCapture } from './capture-protocol.js';
import type { Capture, OpenCapture } from './open-video-capture.js';

interface HeldFrame {
  mat: Mat;
  capturedAtMs: number;
  readMs: number;
}

/** How often a capture whose frames are all skipped by maxFps says it is alive. */
const ALIVE_INTERVAL_MS = 1000;

/** Read errors in a row that end a connection (a single corrupt packet does not). */
const MAX_READ_ERRORS_IN_A_ROW = 25;

/**
 * What a capture process does (capture-child.ts runs it; tests run it in-process): connect, then read frames as
 * fast as the camera sends them, so FFmpeg's buffer never holds stale frames, and pass on only the newest one.
 * Flow control is a window of one frame: after sending a frame it sends the next only when the parent has
 * acknowledged it; meanwhile a newer frame replaces the held one (counted as `ring-full`), or with backpressure
 * `all` joins a bounded queue. So the IPC channel never queues more than one frame, however busy the parent is.
 * `maxFps` skips frames before they are copied.
 */
export class CaptureLoop {
  private readonly drops = noCaptureDrops();
  private readonly held: HeldFrame[] = [];
  private settings: CaptureSettings | undefined;
  private canSend = true;
  private closing = false;
  private ended = false;
  private nextDueMs = 0;
  private lastAliveMs = -Infinity;

  constructor(
    private readonly openCapture: OpenCapture,
    private readonly post: (msg: FromCapture) => void,
    /** Called once, after the final `ended` message. */
    private readonly exit: () => void,
    private readonly nowMs: () => number = () => performance.now(),
  ) {}

  handle(msg: ToCapture): void {
    if (msg.type === 'open') void this.run(msg.settings);
    else if (msg.type === 'ack') {
      this.canSend = true;
      this.flush();
    } else this.closing = true;
  }

  private async run(settings: CaptureSettings): Promise<void> {
    this.settings = settings;
    let capture: Capture;
    try {
      capture = this.openCapture(settings.uri, settings.capture);
    } catch (err) {
      this.end(`could not connect (${redactUri(messageOf(err))})`, false);
      return;
    }
    const fps = capture.get(cv.CAP_PROP_FPS);
    this.post({ type: 'opened', fps: Number.isFinite(fps) && fps > 0 && fps < 500 ? fps : 25 });
    let reason = 'closed';
    let frames = 0;
    try {
      reason = await this.readUntilLost(capture, settings, () => frames++);
    } finally {
      capture.release();
      this.end(reason, frames > 0);
    }
  }

  private async readUntilLost(capture: Capture, settings: CaptureSettings, onFrame: () => void): Promise<string> {
    const intervalMs = settings.maxFps === null ? 0 : 1000 / settings.maxFps;
    let errorsInARow = 0;
    let lastFrameAtMs = this.nowMs();
    for (;;) {
      if (this.closing) return 'closed';
      const startMs = this.nowMs();
      let mat: Mat;
      try {
        mat = await capture.readAsync();
      } catch (err) {
        this.drops['decode-error']++;
        if (++errorsInARow >= MAX_READ_ERRORS_IN_A_ROW) return `read errors (${redactUri(messageOf(err))})`;
        continue;
      }
      const doneMs = this.nowMs();
      if (mat.empty) {
        const idleMs = doneMs - lastFrameAtMs;
        // FFmpeg's socket timeout ends a read on a silent stream with an empty frame, like an end of stream.
        return idleMs >= settings.capture.readTimeoutMs * 0.8 ? `no frame for ${Math.round(idleMs)} ms, read timed out` : 'stream ended';
      }
      errorsInARow = 0;
      lastFrameAtMs = doneMs;
      onFrame();
      if (intervalMs > 0) {
        if (doneMs < this.nextDueMs) {
          mat.release();
          this.drops['fps-cap']++;
          if (doneMs - this.lastAliveMs >= ALIVE_INTERVAL_MS) {
            this.lastAliveMs = doneMs;
            this.post({ type: 'alive', drops: { ...this.drops } });
          }
          continue;
        }
        // Due times advance by the interval (an even rate), but never bank credit for a burst after a gap.
        this.nextDueMs = Math.max(this.nextDueMs + intervalMs, doneMs);
      }
      this.offer({ mat, capturedAtMs: Date.now(), readMs: doneMs - startMs });
    }
  }

  private offer(frame: HeldFrame): void {
    const keepAll = this.settings?.backpressure === 'all';
    const max = keepAll ? (this.settings?.maxQueuedFrames ?? 1) : 1;
    while (this.held.length >= max) {
      this.held.shift()?.mat.release();
      this.drops[keepAll ? 'queue-full' : 'ring-full']++;
    }
    this.held.push(frame);
    this.flush();
  }

  private flush(): void {
    if (!this.canSend || this.ended) return;
    const frame = this.held.shift();
    if (frame === undefined) return;
    this.canSend = false;
    const { mat } = frame;
    const data = mat.getData();
    this.post({ type: 'frame', capturedAtMs: frame.capturedAtMs, readMs: frame.readMs, rows: mat.rows, cols: mat.cols, data, drops: { ...this.drops } });
    mat.release();
  }

  private end(reason: string, connected: boolean): void {
    if (this.ended) return;
    // The frames still held go out before the end (at most the bounded queue, so the channel stays bounded).
    for (; this.held.length > 0; this.canSend = true) this.flush();
    this.ended = true;
    this.post({ type: 'ended', reason, connected, drops: { ...this.drops } });
    this.exit();
  }
}
