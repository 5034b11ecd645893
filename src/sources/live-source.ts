import { Subject } from 'rxjs';
import type { SourceConfig } from '../config/schema.js';
import { cv, type Mat } from '../cv.js';
import { VisionpipeError, messageOf } from '../errors.js';
import type { Frame } from '../pipeline/frame.js';
import { backoffDelayMs } from './backoff.js';
import { noDrops, type FrameSource, type SourceInfo } from './frame-source.js';
import { redactUri } from './redact-uri.js';
import type { SourceState, SourceStateEvent } from './source-state.js';

/** The part of cv.VideoCapture a live source uses (tests may pass a fake). */
export interface Capture {
  readAsync(): Promise<Mat>;
  get(prop: number): number;
  release(): void;
}

export type OpenCapture = (uri: string, options: SourceConfig['capture']) => Capture;

/**
 * A camera or network stream. Its read loop runs on its own, off the event loop (readAsync on the libuv pool),
 * and keeps draining the stream whatever the pipeline does, so OpenCV's buffer never holds stale frames. With
 * backpressure `latest`, only the newest unread frame is kept: an older one is dropped and counted (`ring-full`).
 * When the stream ends, errors or stalls, it reconnects with exponential backoff and jitter, publishing each state
 * change on `states$`.
 */
export class LiveSource implements FrameSource {
  readonly states$ = new Subject<SourceStateEvent>();
  readonly drops = noDrops();
  readonly info: SourceInfo;
  private readonly pending: Frame[] = [];
  private waiter: ((result: Frame | null | Error) => void) | undefined;
  private state: SourceState | undefined;
  private index = 0;
  private stopping = false;
  private ended = false;
  private failure: Error | undefined;
  private loop: Promise<void> = Promise.resolve();
  private started = false;
  private wakeSleep: (() => void) | undefined;

  constructor(
    private readonly config: SourceConfig,
    private readonly openCapture: OpenCapture = openVideoCapture,
    private readonly random: () => number = Math.random,
  ) {
    this.info = { kind: 'live', id: redactUri(config.uri), sizeWh: [0, 0], fps: 0, frameCount: null };
  }

  /** Starts connecting and reading (subscribe to states$ first to see every state). Idempotent. */
  start(): void {
    if (this.started || this.stopping) return;
    this.started = true;
    this.loop = this.run();
  }

  /** The newest frame not yet taken (waiting for one if none); null once the source has stopped for good. */
  read(): Promise<Frame | null> {
    this.start();
    const next = this.pending.shift();
    if (next !== undefined) return Promise.resolve(next);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.ended || this.stopping) return Promise.resolve(null);
    return new Promise((resolve, reject) => (this.waiter = (r) => (r instanceof Error ? reject(r) : resolve(r))));
  }

  async close(): Promise<void> {
    this.stopping = true;
    this.wakeSleep?.();
    this.deliver(null);
    await this.loop;
    if (!this.started) this.states$.complete();
    for (const f of this.pending.splice(0)) f.mat.release();
  }

  private async run(): Promise<void> {
    // Let start()'s caller return before the first (synchronous) connection attempt.
    await Promise.resolve();
    // Failed connections (or lost streams) in a row; reset when frames flow again.
    let failures = 0;
    const { reconnect } = this.config;
    while (!this.stopping) {
      this.setState('connecting', failures + 1);
      let reason: string;
      let capture: Capture | undefined;
      try {
        capture = this.openCapture(this.config.uri, this.config.capture);
      } catch (err) {
        reason = `could not connect (${redactUri(messageOf(err))})`;
      }
      if (capture !== undefined) {
        reason = await this.readUntilLost(capture, () => (failures = 0));
        capture.release();
      }
      if (this.stopping) break;
      failures++;
      if (reconnect.maxAttempts !== null && failures >= reconnect.maxAttempts) {
        this.failure = new VisionpipeError('VP_SOURCE_LOST', `Gave up on ${this.info.id} after ${failures} failed attempts (last: ${reason!})`);
        break;
      }
      const delayMs = backoffDelayMs(failures, reconnect, this.random);
      this.setState('backoff', failures, reason!, delayMs);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.wakeSleep = () => (clearTimeout(timer), resolve());
      });
    }
    this.ended = true;
    this.setState('stopped', 0, this.failure?.message.split('\n')[0] ?? 'closed');
    this.deliver(this.failure ?? null);
    this.states$.complete();
  }

  /** Reads until the stream ends, errors or the source stops; returns why it stopped. */
  private async readUntilLost(capture: Capture, onLive: () => void): Promise<string> {
    let lastFrameAtMs = performance.now();
    const stallMs = this.config.stallTimeoutMs;
    const watchdog = setInterval(() => {
      if (this.state === 'live' && performance.now() - lastFrameAtMs > stallMs) {
        this.setState('stalled', 0, `no frame for ${stallMs} ms`);
      }
    }, Math.min(250, stallMs / 4));
    let decodeErrorsInARow = 0;
    try {
      for (;;) {
        if (this.stopping) return 'closed';
        let mat: Mat;
        const startMs = performance.now();
        try {
          mat = await capture.readAsync();
        } catch (err) {
          this.drops['decode-error']++;
          if (++decodeErrorsInARow >= 25) return `read errors (${redactUri(messageOf(err))})`;
          continue;
        }
        if (mat.empty) return this.state === 'stalled' ? `no frame for ${stallMs} ms, read timed out` : 'stream ended';
        decodeErrorsInARow = 0;
        const readAtMs = performance.now();
        lastFrameAtMs = readAtMs;
        if (this.state !== 'live') {
          this.info.sizeWh = [mat.cols, mat.rows];
          const fps = capture.get(cv.CAP_PROP_FPS);
          this.info.fps = Number.isFinite(fps) && fps > 0 && fps < 500 ? fps : 25;
          onLive();
          this.setState('live', 0);
        }
        const index = this.index++;
        this.push({ sourceId: this.info.id, index, timestampMs: Date.now(), sizeWh: [mat.cols, mat.rows], mat, readAtMs, readMs: readAtMs - startMs });
      }
    } finally {
      clearInterval(watchdog);
    }
  }

  private push(frame: Frame): void {
    if (this.deliver(frame)) return;
    if (this.config.backpressure === 'all') {
      this.pending.push(frame);
      return;
    }
    for (const old of this.pending.splice(0)) {
      old.mat.release();
      this.drops['ring-full']++;
    }
    this.pending.push(frame);
  }

  private deliver(result: Frame | null | Error): boolean {
    const w = this.waiter;
    if (w === undefined) return false;
    this.waiter = undefined;
    w(result);
    return true;
  }

  private setState(state: SourceState, attempt: number, reason?: string, retryInMs?: number): void {
    if (state === this.state && state !== 'connecting') return;
    this.state = state;
    this.states$.next({
      type: 'source-state',
      source: this.info.id,
      state,
      atMs: Date.now(),
      attempt,
      ...(reason === undefined ? {} : { reason: redactUri(reason) }),
      ...(retryInMs === undefined ? {} : { retryInMs }),
    });
  }
}

/**
 * Opens a stream with OpenCV's FFmpeg backend (or V4L2 for /dev/videoN and camera indexes). FFmpeg options are
 * passed the only way OpenCV 4.6 takes them from Node: the OPENCV_FFMPEG_CAPTURE_OPTIONS variable, read at open.
 */
export function openVideoCapture(uri: string, options: SourceConfig['capture']): Capture {
  const camera = /^\d+$/.test(uri) ? Number(uri) : /^\/dev\/video(\d+)$/.exec(uri)?.[1];
  if (camera !== undefined) return new cv.VideoCapture(Number(camera), cv.CAP_V4L2);
  const ffmpegOptions = [
    `rtsp_transport;${options.transport}`,
    // FFmpeg's socket timeout, in microseconds: bounds both connecting and each read.
    `timeout;${Math.max(options.openTimeoutMs, options.readTimeoutMs) * 1000}`,
    ...(options.lowDelay ? ['fflags;nobuffer', 'flags;low_delay'] : []),
  ];
  process.env['OPENCV_FFMPEG_CAPTURE_OPTIONS'] = ffmpegOptions.join('|');
  return new cv.VideoCapture(uri, cv.CAP_FFMPEG);
}
