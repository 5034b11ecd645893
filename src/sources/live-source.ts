import { Subject } from 'rxjs';
import type { SourceConfig } from '../config/schema.js';
import { cv } from '../cv.js';
import { VisionpipeError } from '../errors.js';
import type { Frame } from '../pipeline/frame.js';
import { backoffDelayMs } from './backoff.js';
import { noCaptureDrops, type CaptureDrops, type FromCapture } from './capture/capture-protocol.js';
import { forkCaptureProcess, type CaptureExit, type CaptureProcess, type SpawnCapture } from './capture/capture-process.js';
import { noDrops, type FrameSource, type SourceInfo } from './frame-source.js';
import { redactUri } from './redact-uri.js';
import type { SourceState, SourceStateEvent } from './source-state.js';

/** A capture process gets this long to start (load Node and OpenCV) on top of the configured open timeout. */
const START_GRACE_MS = 5000;
/** After `close`, a capture process that has not exited within this is killed (it may be stuck connecting). */
const CLOSE_GRACE_MS = 1500;

/** How one connection (one capture process) ended. */
interface SessionEnd {
  reason: string;
}

/**
 * A camera or network stream, captured in a child process of its own (capture/capture-child.ts): connecting,
 * a camera that hangs, or a decoder crash cost this camera alone, never the event loop or another camera. The
 * capture process drains the stream continuously and passes on only its newest frame; here the newest frame
 * waits for the pipeline (backpressure `latest`: an older one is dropped and counted as `ring-full`). When the
 * stream ends, errors, stalls, or the capture process dies, the source reconnects in a new process with
 * exponential backoff and jitter, publishing each state change on `states$`. After `reconnect.maxAttempts`
 * failures in a row it gives up alone (state `failed`); what that means for the run is the pipeline's rule.
 */
export class LiveSource implements FrameSource {
  readonly states$ = new Subject<SourceStateEvent>();
  readonly drops = noDrops();
  readonly info: SourceInfo;
  private readonly pending: Frame[] = [];
  private readonly readyWaiters: Array<(ready: boolean) => void> = [];
  private state: SourceState | undefined;
  private index = 0;
  private stopping = false;
  private ended = false;
  private lastFailure: VisionpipeError | undefined;
  private loop: Promise<void> = Promise.resolve();
  private started = false;
  private wakeSleep: (() => void) | undefined;
  private current: CaptureProcess | undefined;

  constructor(
    private readonly config: SourceConfig,
    private readonly spawnCapture: SpawnCapture = forkCaptureProcess,
    private readonly random: () => number = Math.random,
  ) {
    this.info = { kind: 'live', id: redactUri(config.uri), sizeWh: [0, 0], fps: 0, frameCount: null };
  }

  /** The OS process id of the current capture process (diagnostics and fault tests); undefined between them. */
  get capturePid(): number | undefined {
    return this.current?.pid;
  }

  /** Why the source gave up (state `failed`), once it has; undefined while it runs or after a normal close. */
  get failure(): VisionpipeError | undefined {
    return this.lastFailure;
  }

  /** Starts connecting and reading (subscribe to states$ first to see every state). Idempotent. */
  start(): void {
    if (this.started || this.stopping) return;
    this.started = true;
    this.loop = this.run();
  }

  /** Resolves true once a frame waits here (read() then returns it at once), false once the source has ended. */
  frameReady(): Promise<boolean> {
    this.start();
    if (this.pending.length > 0) return Promise.resolve(true);
    if (this.ended || this.stopping) return Promise.resolve(false);
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** The newest frame not yet taken (waiting for one if none); null once the source has ended. */
  async read(): Promise<Frame | null> {
    for (;;) {
      const next = this.pending.shift();
      if (next !== undefined) return next;
      if (!(await this.frameReady())) return null;
    }
  }

  async close(): Promise<void> {
    this.stopping = true;
    this.wakeSleep?.();
    this.current?.send({ type: 'close' });
    const proc = this.current;
    const killTimer = setTimeout(() => proc?.kill(), CLOSE_GRACE_MS);
    this.wake(false);
    await this.loop;
    clearTimeout(killTimer);
    if (!this.started) this.states$.complete();
    for (const f of this.pending.splice(0)) f.mat.release();
  }

  private async run(): Promise<void> {
    // Failed connections (or lost streams) in a row; reset when frames flow again.
    let failures = 0;
    const { reconnect } = this.config;
    while (!this.stopping) {
      this.setState('connecting', failures + 1);
      const end = await this.session(() => (failures = 0));
      if (this.stopping) break;
      failures++;
      if (reconnect.maxAttempts !== null && failures >= reconnect.maxAttempts) {
        this.lastFailure = new VisionpipeError('VP_SOURCE_LOST', `Gave up on ${this.info.id} after ${failures} failed attempts in a row (last: ${end.reason})`);
        this.setState('failed', failures, end.reason);
        break;
      }
      const delayMs = backoffDelayMs(failures, reconnect, this.random);
      this.setState('backoff', failures, end.reason, delayMs);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.wakeSleep = () => (clearTimeout(timer), resolve());
      });
      this.wakeSleep = undefined;
    }
    this.ended = true;
    // `failed` is final: it stays the source's state (in Prometheus too), so an alert can tell it from a normal close.
    if (this.lastFailure === undefined) this.setState('stopped', 0, 'closed');
    this.wake(false);
    this.states$.complete();
  }

  /**
   * One connection: a capture process from start to exit. A watchdog here bounds what FFmpeg's own timeouts may
   * miss: no first frame within the open budget, or no frame for stallTimeoutMs + readTimeoutMs, kills it.
   */
  private session(onLive: () => void): Promise<SessionEnd> {
    const { capture, stallTimeoutMs } = this.config;
    const proc = this.spawnCapture();
    this.current = proc;
    const startedAtMs = performance.now();
    const connectBudgetMs = capture.openTimeoutMs + capture.readTimeoutMs + START_GRACE_MS;
    let lastFrameAtMs = startedAtMs;
    let gotFrames = false;
    let endReason: string | undefined;
    const seen: CaptureDrops = noCaptureDrops();
    const countDrops = (now: CaptureDrops) => {
      for (const reason of Object.keys(seen) as Array<keyof CaptureDrops>) {
        this.drops[reason] += now[reason] - seen[reason];
        seen[reason] = now[reason];
      }
    };
    const kill = (reason: string) => {
      endReason ??= reason;
      proc.kill();
    };
    const watchdog = setInterval(() => {
      const nowMs = performance.now();
      if (!gotFrames) {
        if (nowMs - startedAtMs > connectBudgetMs) kill(`no frame within ${connectBudgetMs} ms of connecting`);
        return;
      }
      const idleMs = nowMs - lastFrameAtMs;
      if (this.state === 'live' && idleMs > stallTimeoutMs) this.setState('stalled', 0, `no frame for ${stallTimeoutMs} ms`);
      if (idleMs > stallTimeoutMs + capture.readTimeoutMs) kill(`no frame for ${Math.round(idleMs)} ms`);
    }, Math.min(250, stallTimeoutMs / 4));

    proc.onMessage((msg: FromCapture) => {
      if (msg.type === 'ended') {
        endReason ??= msg.reason;
        countDrops(msg.drops);
      } else if (msg.type === 'alive') {
        // Frames flow, maxFps skips them all: not a stall.
        if (gotFrames) lastFrameAtMs = performance.now();
        countDrops(msg.drops);
      } else if (msg.type === 'opened') {
        this.info.fps = msg.fps;
      } else if (msg.type === 'frame') {
        lastFrameAtMs = performance.now();
        countDrops(msg.drops);
        proc.send({ type: 'ack' });
        if (!gotFrames || this.state !== 'live') {
          gotFrames = true;
          this.info.sizeWh = [msg.cols, msg.rows];
          onLive();
          this.setState('live', 0);
        }
        this.receive(msg, lastFrameAtMs);
      }
    });
    return new Promise<SessionEnd>((resolve) => {
      proc.onExit((exit) => {
        clearInterval(watchdog);
        if (this.current === proc) this.current = undefined;
        resolve({ reason: this.stopping ? 'closed' : (endReason ?? crashReason(exit)) });
      });
      const { uri, maxFps, maxQueuedFrames } = this.config;
      const backpressure = this.config.backpressure === 'all' ? 'all' : 'latest';
      proc.send({ type: 'open', settings: { uri, capture, maxFps, backpressure, maxQueuedFrames } });
    });
  }

  private receive(msg: Extract<FromCapture, { type: 'frame' }>, receivedAtMs: number): void {
    if (this.stopping) return;
    const bytes = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
    const mat = new cv.Mat(bytes, msg.rows, msg.cols, cv.CV_8UC3);
    // Latency starts at capture, not at arrival here: the hop from the capture process counts too.
    const readAtMs = receivedAtMs - Math.max(0, Date.now() - msg.capturedAtMs);
    const frame: Frame = {
      sourceId: this.info.id,
      index: this.index++,
      timestampMs: msg.capturedAtMs,
      sizeWh: [msg.cols, msg.rows],
      mat,
      readAtMs,
      readMs: msg.readMs,
    };
    if (this.config.backpressure === 'all') {
      // Keeping every frame has a bound too: past it the oldest waiting frame goes.
      if (this.pending.length >= this.config.maxQueuedFrames) {
        this.pending.shift()?.mat.release();
        this.drops['queue-full']++;
      }
    } else {
      for (const old of this.pending.splice(0)) {
        old.mat.release();
        this.drops['ring-full']++;
      }
    }
    this.pending.push(frame);
    this.wake(true);
  }

  private wake(ready: boolean): void {
    for (const w of this.readyWaiters.splice(0)) w(ready);
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

function crashReason(exit: CaptureExit): string {
  const how = exit.signal !== null ? `killed by ${exit.signal}` : `exited with code ${exit.code ?? '?'}`;
  return redactUri(`capture process ${how}${exit.stderrTail === '' ? '' : ` (${exit.stderrTail})`}`);
}
