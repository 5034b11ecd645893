import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { VisionpipeError } from '../errors.js';
import { OutputTail, describeExit, formatCommand, signalChild, spawnChild } from './children.js';

export interface RawVideoEncoderOptions {
  ffmpegPath: string;
  /** ffmpeg's arguments; its input must be `pipe:0` (raw frames). */
  args: readonly string[];
  /** Bytes of one raw frame: the backpressure threshold is counted in frames. */
  frameBytes: number;
  /** What the encoder writes, for error messages: `while writing out/cam.mp4`. */
  doing: string;
  /** Keep ffmpeg's stdout readable (`stdout`); default: ignored. */
  readStdout?: boolean;
  /** A write that waits longer than this for ffmpeg to take a frame kills it (hung). Default 60 s. */
  stuckWriteMs?: number;
  /** ffmpeg not done this long after the end of its input is killed (hung). Default 30 s. */
  stuckFinishMs?: number;
}

/** An ffmpeg filter that pads an odd width or height to the next even number (x264's 4:2:0 needs even sizes). */
export const EVEN_SIZE = 'pad=ceil(iw/2)*2:ceil(ih/2)*2';

/** Raw frames let wait in the pipe to ffmpeg before `write` waits: the encoder works while the pipeline goes on. */
const SLACK_FRAMES = 2;

/**
 * A healthy ffmpeg takes a frame within milliseconds and finishes within seconds of the end of its input (the
 * encoder's lookahead plus the file's index). Past these bounds it is hung (frozen, or stuck on a dead disk): it
 * is killed and the write or finish fails, so a shutdown always completes.
 */
const STUCK_WRITE_MS = 60_000;
const STUCK_FINISH_MS = 30_000;

/**
 * One ffmpeg that encodes raw frames piped to its stdin. `write` waits for 'drain' once more than two frames are
 * queued, so a slow encoder slows its caller instead of growing a buffer.
 *
 * ffmpeg is spawned directly (not through fluent-ffmpeg) in a process group of its own, so a terminal's Ctrl-C
 * never reaches it: the owner ends its stdin, which is what makes ffmpeg finish its files (an MP4's index) and exit.
 */
export class RawVideoEncoder {
  readonly #options: RawVideoEncoderOptions;
  readonly #child: ChildProcess;
  readonly #stdin: Writable;
  readonly #command: string;
  readonly #stderr: OutputTail;
  /** Settles (never rejects) once ffmpeg has exited and its stderr is read; `failure` is set by then if it failed. */
  readonly #exited: Promise<void>;
  #failure: VisionpipeError | undefined;
  #stdinError: Error | undefined;
  #inputEnded = false;

  constructor(options: RawVideoEncoderOptions) {
    this.#options = options;
    this.#command = formatCommand(options.ffmpegPath, options.args);
    this.#child = spawnChild(options.ffmpegPath, options.args, { stdio: ['pipe', options.readStdout === true ? 'pipe' : 'ignore', 'pipe'] });
    this.#stdin = this.#child.stdin as Writable;
    this.#stderr = new OutputTail(this.#child.stderr);
    // EPIPE when ffmpeg dies with frames still queued: the exit status is the error to report, this is only its echo.
    this.#stdin.on('error', (err) => (this.#stdinError ??= err));
    this.#exited = new Promise<void>((settle) => {
      // 'close' (not 'exit') comes after stderr has ended, so the message has ffmpeg's last words.
      this.#child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        // Even exit code 0 is a failure before the end of the input: frames would be missing.
        if (code !== 0 || !this.#inputEnded) this.#fail(`ffmpeg ended with ${describeExit(code, signal)}${this.#inputEnded ? '' : ' before the end of its input'}`);
        settle();
      });
      // Spawning failed (no such file, not executable). Node follows with 'close'; settling here too is harmless.
      this.#child.once('error', (err) => {
        this.#fail(`ffmpeg could not be started (${err.message})`, err);
        if (this.#child.pid === undefined) settle();
      });
    });
  }

  /** ffmpeg's stdout, when `readStdout` was asked for. */
  get stdout(): Readable | null {
    return this.#child.stdout;
  }

  /** Why ffmpeg failed, once it has. */
  get failure(): VisionpipeError | undefined {
    return this.#failure;
  }

  /** Resolves once ffmpeg has exited (never rejects). */
  get exited(): Promise<void> {
    return this.#exited;
  }

  /** ffmpeg is behind: more than two frames wait in its pipe (a write now would wait for it). */
  get backlogged(): boolean {
    return this.#stdin.writableLength > SLACK_FRAMES * this.#options.frameBytes;
  }

  /** Queues one raw frame; waits while ffmpeg is behind. Throws ffmpeg's failure. */
  async write(data: Buffer): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    const flowing = this.#pipeBroken() ? false : this.#stdin.write(data);
    if (!flowing && this.#stdin.writableLength > SLACK_FRAMES * this.#options.frameBytes) {
      const stuckMs = this.#options.stuckWriteMs ?? STUCK_WRITE_MS;
      // 'drain' never comes if ffmpeg died: its exit ends the wait too.
      const stopWaiting = new AbortController();
      try {
        await this.#killIfNotBy(stuckMs, `took no frame for ${stuckMs / 1000} s`, Promise.race([once(this.#stdin, 'drain', { signal: stopWaiting.signal }).catch(() => undefined), this.#exited]));
      } finally {
        stopWaiting.abort();
      }
    }
    // A broken pipe (EPIPE) means ffmpeg is going: its exit status, not the EPIPE, is the error to report.
    if (this.#pipeBroken()) await this.#exited;
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Ends ffmpeg's input and waits for it to finish its files and exit; a hung one is killed. Throws its failure. */
  async finish(): Promise<void> {
    await this.#endAndWait();
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Like finish(), but never throws: what ffmpeg wrote is kept as it is. */
  async abort(): Promise<void> {
    await this.#endAndWait();
  }

  async #endAndWait(): Promise<void> {
    this.#inputEnded = true;
    if (!this.#stdin.writableEnded && !this.#stdin.destroyed) this.#stdin.end();
    const stuckMs = this.#options.stuckFinishMs ?? STUCK_FINISH_MS;
    await this.#killIfNotBy(stuckMs, `did not finish within ${stuckMs / 1000} s of the end of its input`, this.#exited);
  }

  /** Waits for `done`; a hung ffmpeg (not done within `ms`) is killed, and fails with `why`. */
  async #killIfNotBy(ms: number, why: string, done: Promise<unknown>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<'stuck'>((resolve) => (timer = setTimeout(() => resolve('stuck'), ms)));
    try {
      if ((await Promise.race([done, stuck])) !== 'stuck') return;
      this.#fail(`ffmpeg ${why}: killed`);
      signalChild(this.#child, 'SIGKILL');
      await this.#exited;
    } finally {
      clearTimeout(timer);
    }
  }

  #pipeBroken(): boolean {
    return this.#stdinError !== undefined || this.#stdin.destroyed;
  }

  #fail(what: string, cause?: unknown): void {
    this.#failure ??= new VisionpipeError('VP_FFMPEG_FAILED', `${what} ${this.#options.doing}`, {
      hint: `Command: ${this.#command}\n    Last stderr lines:\n      ${this.#stderr.lines().join('\n      ') || '(none)'}`,
      cause: cause ?? this.#stdinError,
    });
  }
}
