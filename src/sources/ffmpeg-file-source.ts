import type { ChildProcess } from 'node:child_process';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { cv } from '../cv.js';
import { messageOf } from '../errors.js';
import type { Frame } from '../pipeline/frame.js';
import { signalChild, spawnChild } from '../process/children.js';
import { locateFfmpeg, locateFfprobe } from '../process/ffmpeg-path.js';
import { checkVideoPath, fileFrame, unreadable } from './file-source.js';
import { noDrops, type FrameSource, type SourceInfo } from './frame-source.js';
import { probeVideo } from './probe-video.js';

/** Where the ffmpeg and ffprobe binaries are; found with locateFfmpeg / locateFfprobe by default. */
export interface FfmpegFileSourceOptions {
  id?: string;
  ffmpegPath?: string;
  ffprobePath?: string;
}

/** Lines of ffmpeg's stderr kept for error messages. */
const STDERR_TAIL_LINES = 8;

/**
 * A video file decoded by the ffmpeg binary (`source.decoder: ffmpeg`), for files OpenCV mis-reads: raw BGR
 * frames (8UC3) over a pipe. Pull-based: a frame is taken from the pipe only when `read` is called; meanwhile the
 * pipe fills and ffmpeg blocks writing to it, so at most about two frames (the stream's buffer grows to hold one)
 * plus the pipe's 64 KiB wait here.
 * ffmpeg runs in its own process group (spawnChild); `close` kills it and waits until it has exited.
 * Same `info`, `framesRead` and errors as FileSource (VP_SOURCE_NOT_FOUND / VP_SOURCE_UNREADABLE at open).
 */
export class FfmpegFileSource implements FrameSource {
  readonly drops = noDrops();
  private index = 0;
  private pending: Buffer | null;
  private closed = false;
  private readonly frameBytes: number;
  /** Resolves once ffmpeg has exited and its pipes are closed. */
  readonly exited: Promise<void>;
  /** The read waiting for a whole frame from the pipe, woken on new data, end or close. */
  private waiter: (() => void) | undefined;
  private stdoutDone = false;
  /** How ffmpeg ended, once it has: a decoder that dies mid-file is an error, not an early end of file. */
  private exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  private constructor(
    private readonly child: ChildProcess,
    private readonly stdout: Readable,
    readonly info: SourceInfo,
    private readonly path: string,
    private readonly stderrTail: readonly string[],
  ) {
    const [w, h] = info.sizeWh;
    this.frameBytes = w * h * 3;
    this.pending = null;
    const wake = (): void => this.waiter?.();
    const done = (): void => {
      this.stdoutDone = true;
      wake();
    };
    stdout.on('readable', wake);
    stdout.once('end', done);
    stdout.once('close', done);
    // A pipe error ends the input like EOF does; the frame count then tells whether the file was cut short.
    stdout.on('error', done);
    // 'close' comes after 'exit' (the child has been reaped) and after its stderr has been read to the end.
    // A child that failed to start emits 'error' and maybe never 'close': nothing to wait for then.
    this.exited = new Promise<void>((resolve) => {
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        this.exitStatus = { code, signal };
        resolve();
      });
      child.once('error', () => {
        if (child.pid === undefined) resolve();
      });
    });
  }

  /**
   * Probes the file (size, fps, declared frame count), starts ffmpeg and decodes the first frame, so a missing or
   * undecodable file fails here, before anything runs.
   */
  static async open(path: string, options: FfmpegFileSourceOptions = {}): Promise<FfmpegFileSource> {
    const abs = checkVideoPath(path);
    const ffmpeg = options.ffmpegPath === undefined ? locateFfmpeg() : { path: options.ffmpegPath, via: 'FFMPEG_PATH' as const };
    const ffmpegPath = ffmpeg.path;
    const ffprobePath = options.ffprobePath ?? locateFfprobe(ffmpeg);
    let probe: Awaited<ReturnType<typeof probeVideo>>;
    try {
      probe = await probeVideo(abs, ffprobePath);
    } catch (cause) {
      throw unreadable(path, `ffprobe: ${lastLines(messageOf(cause))}`, cause);
    }
    const args = [
      ...['-nostdin', '-hide_banner', '-loglevel', 'error'],
      ...['-i', abs, '-map', '0:v:0', '-an', '-sn', '-dn'],
      // Every decoded frame exactly once (no frame-rate conversion duplicating or dropping frames), like OpenCV.
      ...['-fps_mode', 'passthrough'],
      // Pins the frame size the pipe is cut by: a no-op when the stream keeps the probed size (autorotation included),
      // a resize, never misframed bytes, if it changes mid-file.
      ...['-vf', `scale=${probe.sizeWh[0]}:${probe.sizeWh[1]}`],
      ...['-f', 'rawvideo', '-pix_fmt', 'bgr24', 'pipe:1'],
    ];
    const child = spawnChild(ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stderrTail: string[] = [];
    // Also keeps a late 'error' (nothing else listens after spawnChild's own once) from becoming an uncaught exception.
    const spawnError = new Promise<Error>((resolve) => child.on('error', resolve));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.trim() !== '') stderrTail.push(line.trim());
      stderrTail.splice(0, Math.max(0, stderrTail.length - STDERR_TAIL_LINES));
    });
    const info: SourceInfo = {
      kind: 'file',
      id: options.id ?? basename(abs),
      sizeWh: probe.sizeWh,
      fps: probe.fps ?? 25,
      frameCount: probe.declaredFrameCount,
    };
    const source = new FfmpegFileSource(child, child.stdout as Readable, info, path, stderrTail);
    const first = await Promise.race([source.nextFrameBytes(), spawnError]);
    if (!(first instanceof Buffer)) {
      if (first instanceof Error) {
        await source.close();
        throw unreadable(path, `ffmpeg could not be started: ${first.message}`, first);
      }
      // ffmpeg is ending by itself: let it finish writing stderr so the message says why (but never wait long).
      await Promise.race([source.exited, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      await source.close();
      throw unreadable(path, `ffmpeg decoded no frame from it${stderrTail.length > 0 ? `: ${stderrTail.join(' | ')}` : ''}`);
    }
    source.pending = first;
    return source;
  }

  /** Frames delivered by read() so far. */
  get framesRead(): number {
    return this.index;
  }

  async read(): Promise<Frame | null> {
    if (this.closed) return null;
    const startMs = performance.now();
    let bytes = this.pending;
    this.pending = null;
    bytes ??= await this.nextFrameBytes();
    if (this.closed) return null;
    if (bytes === null) {
      await this.checkExit();
      return null;
    }
    const [w, h] = this.info.sizeWh;
    // This Mat constructor copies the bytes (the other one would alias the Buffer's memory).
    const mat = new cv.Mat(bytes, h, w, cv.CV_8UC3);
    return fileFrame(this.info, this.index++, mat, startMs);
  }

  /**
   * At the end of the pipe: ffmpeg must have ended normally. Killed, crashed or failing, it is a VP_SOURCE_UNREADABLE
   * naming how, never a quietly short file (with allowTruncated, that would even pass as a success).
   */
  private async checkExit(): Promise<void> {
    await this.exited;
    const status = this.exitStatus;
    if (this.closed || status === undefined || (status.code === 0 && status.signal === null)) return;
    const how = status.signal !== null ? `was killed by ${status.signal}` : `exited with code ${status.code ?? '?'}`;
    const said = this.stderrTail.length > 0 ? `: ${this.stderrTail.slice(-2).join(' | ')}` : '';
    throw unreadable(this.path, `the ffmpeg decoder ${how} after ${this.index} frames${said}`);
  }

  /** Kills ffmpeg (its whole process group) unless it has exited already, and resolves once it has been reaped. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.pending = null;
      // Decoding writes nothing worth finishing: SIGKILL is immediate and cannot be ignored.
      signalChild(this.child, 'SIGKILL');
      this.stdout.destroy();
      this.waiter?.();
    }
    await this.exited;
  }

  /** The next w·h·3 bytes from the pipe; null at the end (a trailing partial frame is dropped). */
  private nextFrameBytes(): Promise<Buffer | null> {
    return new Promise<Buffer | null>((resolve) => {
      const attempt = (): void => {
        if (this.closed) return finish(null);
        const chunk = this.stdout.read(this.frameBytes) as Buffer | null;
        // At the end read(n) returns what is left even if shorter: not a frame.
        if (chunk !== null) return finish(chunk.length === this.frameBytes ? chunk : null);
        if (this.stdoutDone || this.stdout.readableEnded || this.stdout.destroyed) finish(null);
      };
      const finish = (value: Buffer | null): void => {
        this.waiter = undefined;
        resolve(value);
      };
      this.waiter = attempt;
      attempt();
    });
  }
}

/** The last two non-empty lines (ffprobe's reason; the lines before are its banner and the input's name). */
function lastLines(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.slice(-2).join(' | ');
}
