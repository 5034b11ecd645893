import type { ServerResponse } from 'node:http';
import { cv } from '../cv.js';
import { FpsMeter } from '../metrics/fps-meter.js';
import type { AnnotatedFrame } from '../pipeline/frame.js';
import type { Sink } from '../sinks/sink.js';
import type { FrameSource } from '../sources/frame-source.js';
import { sourceFileName } from '../sources/source-file-name.js';
import type { DropReason, SourceState } from '../sources/source-state.js';

export interface LiveViewOptions {
  /** JPEGs per second per source at most, and only while someone watches. */
  maxFps: number;
  quality: number;
  /** Recent events kept for the page and the API. */
  maxEvents: number;
  /** performance.now()-like clock (ms). Default performance.now. */
  nowMs?: () => number;
}

/** What GET /api/sources says about one source. */
export interface SourceView {
  /** The source's id (credentials already masked) and its URL-safe name, used in API paths. */
  id: string;
  name: string;
  kind: 'file' | 'live';
  /** Files are `live` while they are read and `stopped` at their end; live sources follow their state machine. */
  state: SourceState;
  reason: string | null;
  attempt: number;
  retryInMs: number | null;
  /** Predictions per second over the last 30 frames. */
  fps: number;
  /** Capture → prediction of the newest frame, ms. */
  latencyMs: number | null;
  frames: number;
  lastFrameIndex: number | null;
  drops: Record<DropReason, number>;
  sizeWh: [number, number] | null;
  viewers: number;
  /** What the page has cost this source so far: JPEGs encoded, time copying frames (main thread) and encoding (libuv's pool). */
  page: { jpegs: number; copyMs: number; encodeMs: number };
}

/** An event as the page and the API keep it: the event and its place in the run's event sequence. */
export interface KeptEvent {
  seq: number;
  event: Record<string, unknown>;
}

interface Viewer {
  res: ServerResponse;
  /** The newest frame that waits for the socket to drain (older ones it replaced were skipped). */
  pending: Buffer | null;
  sent: number;
  skipped: number;
}

interface SourceLive {
  source: FrameSource;
  name: string;
  state: SourceState;
  reason: string | null;
  attempt: number;
  retryInMs: number | null;
  fps: FpsMeter;
  fpsNow: number;
  latencyMs: number | null;
  frames: number;
  lastFrameIndex: number | null;
  sizeWh: [number, number] | null;
  viewers: Set<Viewer>;
  /** One-shot waiters for the next JPEG (GET latest.jpg). */
  waiters: (() => void)[];
  latest: { jpeg: Buffer; frameIndex: number } | null;
  /** A page that polls latest.jpg keeps the source's frames encoded until then (its next request comes soon). */
  wantedUntilMs: number;
  lastEncodeAtMs: number;
  encoding: boolean;
  jpegs: number;
  copyMs: number;
  encodeMs: number;
}

export const MJPEG_BOUNDARY = 'visionpipe-frame';
/** How long after a latest.jpg request a source's frames are still encoded (the page's next request comes sooner). */
const POLL_KEEPS_ENCODING_MS = 2000;

/**
 * What the live page shows, fed like a sink: every annotated frame passes through `write` (which never waits and
 * never fails: the page must not slow the pipeline) and every state change and object event through `writeEvent`.
 *
 * Video: a source's frame is JPEG-encoded only while someone watches (a stream viewer or a latest.jpg request), at
 * most `maxFps` a second, one encode at a time per source: the pixels are copied at once (the frame is released
 * after the sinks) and encoded with OpenCV's imencodeAsync, off the event loop. Each viewer gets the newest JPEG;
 * one whose socket has not drained keeps at most one waiting frame (a newer one replaces it, counted as skipped),
 * so a slow or stalled browser gets fewer frames and costs at most one JPEG of memory.
 */
export class LiveView implements Sink {
  readonly name = 'live page';
  readonly #options: LiveViewOptions;
  readonly #nowMs: () => number;
  readonly #sources = new Map<string, SourceLive>();
  readonly #byName = new Map<string, SourceLive>();
  readonly #events: KeptEvent[] = [];
  readonly #eventListeners = new Set<(kept: KeptEvent) => void>();
  #seq = 0;
  #closed = false;

  constructor(sources: readonly FrameSource[], options: LiveViewOptions) {
    this.#options = options;
    this.#nowMs = options.nowMs ?? (() => performance.now());
    for (const source of sources) {
      const live: SourceLive = {
        source,
        name: sourceFileName(source.info.id),
        state: source.info.kind === 'file' ? 'live' : 'connecting',
        reason: null,
        attempt: 0,
        retryInMs: null,
        fps: new FpsMeter(),
        fpsNow: 0,
        latencyMs: null,
        frames: 0,
        lastFrameIndex: null,
        sizeWh: null,
        viewers: new Set(),
        waiters: [],
        latest: null,
        wantedUntilMs: -Infinity,
        lastEncodeAtMs: -Infinity,
        encoding: false,
        jpegs: 0,
        copyMs: 0,
        encodeMs: 0,
      };
      this.#sources.set(source.info.id, live);
      this.#byName.set(live.name, live);
    }
  }

  /** Every source, in config order. */
  sources(): SourceView[] {
    return [...this.#sources.values()].map((s) => ({
      id: s.source.info.id,
      name: s.name,
      kind: s.source.info.kind,
      state: s.state,
      reason: s.reason,
      attempt: s.attempt,
      retryInMs: s.retryInMs,
      fps: Math.round(s.fpsNow * 100) / 100,
      latencyMs: s.latencyMs === null ? null : Math.round(s.latencyMs),
      frames: s.frames,
      lastFrameIndex: s.lastFrameIndex,
      drops: { ...s.source.drops },
      sizeWh: s.sizeWh,
      viewers: s.viewers.size,
      page: { jpegs: s.jpegs, copyMs: Math.round(s.copyMs * 10) / 10, encodeMs: Math.round(s.encodeMs * 10) / 10 },
    }));
  }

  hasSource(name: string): boolean {
    return this.#byName.has(name);
  }

  /** Ready: no live source has given up (each is live or still within its reconnect budget). */
  ready(): { ready: boolean; failed: string[] } {
    const failed = [...this.#sources.values()].filter((s) => s.state === 'failed').map((s) => s.name);
    return { ready: failed.length === 0, failed };
  }

  /** Events after `sinceSeq` (0 = all kept), oldest first. */
  eventsSince(sinceSeq: number): KeptEvent[] {
    return this.#events.filter((e) => e.seq > sinceSeq);
  }

  /** The kept event with this id (for its snapshot or clip), or undefined. */
  eventById(id: string): Record<string, unknown> | undefined {
    return this.#events.find((e) => e.event['id'] === id)?.event;
  }

  /** Calls `listener` with each new event until the returned function is called. */
  onEvent(listener: (kept: KeptEvent) => void): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  /** Starts an MJPEG stream of a source on `res` (headers written here); it ends when the client goes or at close(). */
  addViewer(name: string, res: ServerResponse): boolean {
    const s = this.#byName.get(name);
    if (s === undefined || this.#closed) return false;
    res.writeHead(200, {
      'content-type': `multipart/x-mixed-replace; boundary=${MJPEG_BOUNDARY}`,
      'cache-control': 'no-store',
      connection: 'close',
    });
    const viewer: Viewer = { res, pending: null, sent: 0, skipped: 0 };
    s.viewers.add(viewer);
    res.on('drain', () => {
      const next = viewer.pending;
      viewer.pending = null;
      if (next !== null) this.#send(viewer, next);
    });
    res.once('close', () => s.viewers.delete(viewer));
    if (s.latest !== null) this.#offer(viewer, s.latest.jpeg);
    return true;
  }

  /** Per viewer: frames sent, frames skipped for a slow reader, bytes waiting in its socket (tests and bench). */
  viewerStats(): { source: string; sent: number; skipped: number; bufferedBytes: number }[] {
    return [...this.#sources.values()].flatMap((s) =>
      [...s.viewers].map((v) => ({ source: s.name, sent: v.sent, skipped: v.skipped, bufferedBytes: v.res.writableLength + (v.pending?.length ?? 0) })),
    );
  }

  /**
   * A JPEG of a source newer than frame `afterFrameIndex` (default: the next one encoded), waiting for it up to
   * `timeoutMs`; then the newest there is, or null if none. The page polls this, one request per tile at a time:
   * a browser that is slow asks less often (its own backpressure), and only HTTP requests that end are used, so a
   * page with nine tiles does not run out of the six connections a browser opens to one server.
   */
  async latestJpeg(name: string, timeoutMs = 2000, afterFrameIndex?: number): Promise<{ jpeg: Buffer; frameIndex: number } | null> {
    const s = this.#byName.get(name);
    if (s === undefined) return null;
    s.wantedUntilMs = this.#nowMs() + POLL_KEEPS_ENCODING_MS;
    if (afterFrameIndex !== undefined && s.latest !== null && s.latest.frameIndex > afterFrameIndex) return s.latest;
    if (s.state !== 'live' || this.#closed) return s.latest;
    return new Promise<{ jpeg: Buffer; frameIndex: number } | null>((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(s.latest);
      };
      const timer = setTimeout(() => {
        s.waiters = s.waiters.filter((w) => w !== finish);
        finish();
      }, timeoutMs);
      s.waiters.push(finish);
    });
  }

  write(annotated: AnnotatedFrame): Promise<void> {
    const { frame, prediction } = annotated;
    const s = this.#sources.get(frame.sourceId);
    if (s === undefined || this.#closed) return Promise.resolve();
    const now = this.#nowMs();
    s.frames += 1;
    s.lastFrameIndex = frame.index;
    s.fpsNow = s.fps.tick(now);
    s.latencyMs = prediction.latencyMs;
    s.sizeWh = [frame.mat.cols, frame.mat.rows];
    if (s.source.info.kind === 'file') s.state = 'live';
    const wanted = s.viewers.size > 0 || s.waiters.length > 0 || now < s.wantedUntilMs;
    if (wanted && !s.encoding && now - s.lastEncodeAtMs >= 1000 / this.#options.maxFps) {
      s.encoding = true;
      s.lastEncodeAtMs = now;
      const copyStartMs = performance.now();
      const copy = frame.mat.copy();
      const encodeStartMs = performance.now();
      s.copyMs += encodeStartMs - copyStartMs;
      const index = frame.index;
      cv.imencodeAsync('.jpg', copy, [cv.IMWRITE_JPEG_QUALITY, this.#options.quality])
        .then((jpeg) => {
          s.encodeMs += performance.now() - encodeStartMs;
          s.jpegs += 1;
          this.#encoded(s, jpeg, index);
        })
        .catch(() => undefined) // a failed encode costs that frame of the page, nothing else
        .finally(() => {
          copy.release();
          s.encoding = false;
        });
    }
    return Promise.resolve();
  }

  writeEvent(event: Record<string, unknown>): void {
    if (this.#closed) return;
    if (event['type'] === 'source-state' && typeof event['source'] === 'string') {
      const s = this.#sources.get(event['source']);
      if (s !== undefined) {
        s.state = event['state'] as SourceState;
        s.reason = typeof event['reason'] === 'string' ? event['reason'] : null;
        s.attempt = typeof event['attempt'] === 'number' ? event['attempt'] : 0;
        s.retryInMs = typeof event['retryInMs'] === 'number' ? event['retryInMs'] : null;
      }
    }
    // object.update (several a second per object) would push out what the page shows; they are not kept.
    if (event['type'] === 'object.update') return;
    this.#seq += 1;
    const kept = { seq: this.#seq, event };
    this.#events.push(kept);
    if (this.#events.length > this.#options.maxEvents) this.#events.shift();
    for (const listener of this.#eventListeners) listener(kept);
  }

  /** A source read its last frame (a file at its end, a camera given up): it shows `stopped` (or its state) and no fps. */
  sourceEnded(sourceId: string): void {
    const s = this.#sources.get(sourceId);
    if (s === undefined) return;
    if (s.source.info.kind === 'file' || s.state === 'live') s.state = 'stopped';
    s.fpsNow = 0;
  }

  /** The run is over: file sources show `stopped`, streams end. */
  close(): Promise<string> {
    this.#end();
    return Promise.resolve('');
  }

  abort(): Promise<string | null> {
    this.#end();
    return Promise.resolve(null);
  }

  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#sources.values()) {
      if (s.source.info.kind === 'file' || s.state === 'live') s.state = 'stopped';
      for (const waiter of s.waiters.splice(0)) waiter();
      for (const viewer of s.viewers) viewer.res.end();
      s.viewers.clear();
    }
  }

  #encoded(s: SourceLive, jpeg: Buffer, frameIndex: number): void {
    s.latest = { jpeg, frameIndex };
    for (const waiter of s.waiters.splice(0)) waiter();
    for (const viewer of s.viewers) this.#offer(viewer, jpeg);
  }

  /** Sends now if the viewer's socket has drained; else keeps this as its one waiting frame. */
  #offer(viewer: Viewer, jpeg: Buffer): void {
    if (viewer.res.writableLength > 0) {
      if (viewer.pending !== null) viewer.skipped += 1;
      viewer.pending = jpeg;
      return;
    }
    this.#send(viewer, jpeg);
  }

  #send(viewer: Viewer, jpeg: Buffer): void {
    if (viewer.res.destroyed || viewer.res.writableEnded) return;
    viewer.sent += 1;
    viewer.res.write(`--${MJPEG_BOUNDARY}\r\ncontent-type: image/jpeg\r\ncontent-length: ${jpeg.length}\r\n\r\n`);
    viewer.res.write(jpeg);
    viewer.res.write('\r\n');
  }
}
