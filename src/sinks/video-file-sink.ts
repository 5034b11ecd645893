import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, renameSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { VisionpipeError } from '../errors.js';
import type { AnnotatedFrame } from '../pipeline/frame.js';
import { OutputTail, describeExit, formatCommand, signalChild, spawnChild } from '../process/children.js';
import { partialPathOf } from './output-path.js';
import type { Sink } from './sink.js';

export interface VideoFileSinkOptions {
  path: string;
  ffmpegPath: string;
  sizeWh: readonly [number, number];
  fps: number;
  crf: number;
  preset: string;
  /** A write that waits longer than this for ffmpeg to take a frame kills it (hung). Default 60 s. */
  stuckWriteMs?: number;
  /** ffmpeg not done this long after the end of its input is killed (hung). Default 30 s. */
  stuckFinishMs?: number;
}

/** Raw frames the sink lets wait in the pipe to ffmpeg before `write` waits: the encoder works while we annotate. */
const SLACK_FRAMES = 2;

/**
 * Annotated frames → H.264 MP4 through ffmpeg. Raw BGR frames are piped to ffmpeg's stdin; `write` waits for
 * 'drain' once more than two frames are queued, so a slow encoder slows the pipeline instead of growing a buffer.
 *
 * ffmpeg is spawned directly (not through fluent-ffmpeg) in a process group of its own, so a terminal's Ctrl-C
 * never reaches it: visionpipe ends its stdin, which is what makes ffmpeg write the MP4 index (moov) and exit.
 */
/**
 * A healthy ffmpeg takes a frame within milliseconds and finishes the file within seconds of the end of its input
 * (the encoder's lookahead plus the index). Past these bounds it is hung (frozen, or stuck on a dead disk): it is
 * killed and the write or close fails, so a shutdown always completes.
 */
const STUCK_WRITE_MS = 60_000;
const STUCK_FINISH_MS = 30_000;

export class VideoFileSink implements Sink {
  readonly name = 'video';
  private readonly child: ChildProcess;
  private readonly stdin: Writable;
  private readonly partial: string;
  private readonly command: string;
  private readonly stderr: OutputTail;
  private readonly frameBytes: number;
  /** Settles (never rejects) once ffmpeg has exited and its stderr is read; `failure` is set by then if it failed. */
  private readonly exited: Promise<void>;
  private failure: VisionpipeError | undefined;
  private stdinError: Error | undefined;
  private inputEnded = false;
  private frames = 0;
  private readonly stuckWriteMs: number;
  private readonly stuckFinishMs: number;

  constructor(private readonly options: VideoFileSinkOptions) {
    this.stuckWriteMs = options.stuckWriteMs ?? STUCK_WRITE_MS;
    this.stuckFinishMs = options.stuckFinishMs ?? STUCK_FINISH_MS;
    const [w, h] = options.sizeWh;
    this.partial = partialPathOf(options.path);
    this.frameBytes = w * h * 3;
    const args = [
      ...['-hide_banner', '-nostats', '-loglevel', 'warning'],
      ...['-f', 'rawvideo', '-pix_fmt', 'bgr24', '-video_size', `${w}x${h}`, '-framerate', String(options.fps), '-i', 'pipe:0'],
      ...['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', options.preset, '-crf', String(options.crf)],
      ...['-movflags', '+faststart', '-f', 'mp4', '-y', this.partial],
    ];
    this.command = formatCommand(options.ffmpegPath, args);
    this.child = spawnChild(options.ffmpegPath, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.stdin = this.child.stdin as Writable;
    this.stderr = new OutputTail(this.child.stderr);
    // EPIPE when ffmpeg dies with frames still queued: the exit status is the error to report, this is only its echo.
    this.stdin.on('error', (err) => (this.stdinError ??= err));
    this.exited = new Promise<void>((settle) => {
      // 'close' (not 'exit') comes after stderr has ended, so the message has ffmpeg's last words.
      this.child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        // Even exit code 0 is a failure before the end of the input: frames would be missing.
        if (code !== 0 || !this.inputEnded) this.fail(`ffmpeg ended with ${describeExit(code, signal)}${this.inputEnded ? '' : ' before the end of its input'}`);
        settle();
      });
      // Spawning failed (no such file, not executable). Node follows with 'close'; settling here too is harmless.
      this.child.once('error', (err) => {
        this.fail(`ffmpeg could not be started (${err.message})`, err);
        if (this.child.pid === undefined) settle();
      });
    });
  }

  get sizeWh(): readonly [number, number] {
    return this.options.sizeWh;
  }

  async write(frame: AnnotatedFrame): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const { mat } = frame.frame;
    const [w, h] = this.options.sizeWh;
    if (mat.cols !== w || mat.rows !== h) {
      throw new VisionpipeError('VP_FFMPEG_FAILED', `Frame ${frame.frame.index} is ${mat.cols}x${mat.rows}, the video is ${w}x${h}`, {
        hint: 'All frames of one output video must have the same size.',
      });
    }
    this.frames++;
    const flowing = this.pipeBroken() ? false : this.stdin.write(mat.getData());
    if (!flowing && this.stdin.writableLength > SLACK_FRAMES * this.frameBytes) {
      // 'drain' never comes if ffmpeg died: its exit ends the wait too.
      const stopWaiting = new AbortController();
      try {
        await this.killIfNotBy(this.stuckWriteMs, `took no frame for ${this.stuckWriteMs / 1000} s`, Promise.race([once(this.stdin, 'drain', { signal: stopWaiting.signal }).catch(() => undefined), this.exited]));
      } finally {
        stopWaiting.abort();
      }
    }
    // A broken pipe (EPIPE) means ffmpeg is going: its exit status, not the EPIPE, is the error to report.
    if (this.pipeBroken()) await this.exited;
    if (this.failure !== undefined) throw this.failure;
  }

  /** Ends ffmpeg's input (it then writes the MP4 index and exits) and renames the file to its final name. */
  async close(): Promise<string> {
    this.endInput();
    await this.killIfNotBy(this.stuckFinishMs, `did not finish within ${this.stuckFinishMs / 1000} s of the end of its input`, this.exited);
    if (this.failure !== undefined) throw this.failure;
    renameSync(this.partial, this.options.path);
    return this.options.path;
  }

  async abort(): Promise<string | null> {
    // Ending stdin lets ffmpeg write the moov atom: what was encoded stays a playable MP4.
    this.endInput();
    await this.killIfNotBy(this.stuckFinishMs, `did not finish within ${this.stuckFinishMs / 1000} s of the end of its input`, this.exited);
    // ffmpeg may have failed before creating the file (an unwritable place): never name a file that is not there.
    return this.frames > 0 && existsSync(this.partial) ? this.partial : null;
  }

  /** Waits for `done`; a hung ffmpeg (not done within `ms`) is killed, and fails with `why`. */
  private async killIfNotBy(ms: number, why: string, done: Promise<unknown>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<'stuck'>((resolve) => (timer = setTimeout(() => resolve('stuck'), ms)));
    try {
      if ((await Promise.race([done, stuck])) !== 'stuck') return;
      this.fail(`ffmpeg ${why}: killed`);
      signalChild(this.child, 'SIGKILL');
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private pipeBroken(): boolean {
    return this.stdinError !== undefined || this.stdin.destroyed;
  }

  private endInput(): void {
    this.inputEnded = true;
    if (!this.stdin.writableEnded && !this.stdin.destroyed) this.stdin.end();
  }

  private fail(what: string, cause?: unknown): void {
    this.failure ??= new VisionpipeError('VP_FFMPEG_FAILED', `${what} while writing ${this.options.path}`, {
      hint: `Command: ${this.command}\n    Last stderr lines:\n      ${this.stderr.lines().join('\n      ') || '(none)'}`,
      cause: cause ?? this.stdinError,
    });
  }
}
