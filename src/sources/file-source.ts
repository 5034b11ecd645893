import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { cv, type Mat } from '../cv.js';
import { VisionpipeError, messageOf } from '../errors.js';
import type { Frame } from '../pipeline/frame.js';
import { locateFfmpeg, locateFfprobe } from '../process/ffmpeg-path.js';
import { noDrops, type FrameSource, type SourceInfo } from './frame-source.js';
import { probeVideo } from './probe-video.js';

/**
 * A video file read with OpenCV's VideoCapture. Reads use `readAsync` (libuv pool) so the event loop stays free,
 * and happen only when the pipeline asks: a file is never read ahead of what the pipeline has room for.
 */
export class FileSource implements FrameSource {
  private index = 0;
  private pending: Mat | null;
  private closed = false;
  readonly drops = noDrops();
  /** A read in progress on the libuv pool: the capture must outlive it. */
  private reading: Promise<Mat> | null = null;

  private constructor(
    private readonly capture: InstanceType<typeof cv.VideoCapture>,
    readonly info: SourceInfo,
    first: Mat,
  ) {
    this.pending = first;
  }

  /**
   * Opens the file and decodes its first frame, so a file that is not a video fails here, not mid-run.
   * `info.frameCount` is the count the container declares, or null where that is only an estimate (see
   * declaredFrameCount): it is what a file that ends early is measured against.
   */
  static async open(path: string, id?: string): Promise<FileSource> {
    const abs = resolve(path);
    // ffprobe runs while OpenCV opens the file; it never rejects.
    const declared = declaredFrameCount(abs);
    const { capture, first } = await openVideoFile(path);
    const fps = capture.get(cv.CAP_PROP_FPS);
    const count = Math.round(capture.get(cv.CAP_PROP_FRAME_COUNT));
    const info: SourceInfo = {
      kind: 'file',
      id: id ?? basename(abs),
      sizeWh: [first.cols, first.rows],
      fps: Number.isFinite(fps) && fps > 0 ? fps : 25,
      // OpenCV reports nb_frames when the container has it, else round(duration × fps): keep it only in the first case.
      frameCount: count > 0 && count === (await declared) ? count : null,
    };
    return new FileSource(capture, info, first);
  }

  /** Frames delivered by read() so far. */
  get framesRead(): number {
    return this.index;
  }

  async read(): Promise<Frame | null> {
    if (this.closed) return null;
    const startMs = performance.now();
    let mat = this.pending;
    this.pending = null;
    if (mat === null) {
      this.reading = this.capture.readAsync();
      try {
        mat = await this.reading;
      } finally {
        this.reading = null;
      }
    }
    if (mat.empty) return null;
    return fileFrame(this.info, this.index++, mat, startMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.reading?.catch(() => undefined);
    this.capture.release();
  }
}

/**
 * Opens a video file with OpenCV's FFmpeg backend and decodes its first frame: one clear error for a missing file,
 * a directory, or a file that is not a decodable video. The caller owns (and releases) both.
 */
export async function openVideoFile(path: string): Promise<{ capture: InstanceType<typeof cv.VideoCapture>; first: Mat }> {
  const abs = checkVideoPath(path);
  let capture: InstanceType<typeof cv.VideoCapture>;
  let first: Mat;
  try {
    // The FFmpeg backend only: GStreamer and the image-sequence reader print noise for files they cannot open.
    capture = new cv.VideoCapture(abs, cv.CAP_FFMPEG);
    first = await capture.readAsync();
  } catch (cause) {
    throw unreadable(path, messageOf(cause), cause);
  }
  if (first.empty) {
    capture.release();
    throw unreadable(path, 'OpenCV decoded no frame from it');
  }
  return { capture, first };
}

/** The absolute path of an existing regular file, or VP_SOURCE_NOT_FOUND (the same for every file decoder). */
export function checkVideoPath(path: string): string {
  const abs = resolve(path);
  if (!existsSync(abs)) {
    throw new VisionpipeError('VP_SOURCE_NOT_FOUND', 'The input video does not exist', { value: path });
  }
  if (statSync(abs).isDirectory()) {
    throw new VisionpipeError('VP_SOURCE_NOT_FOUND', 'The input is a directory, not a video file', { value: path });
  }
  return abs;
}

/**
 * The frame count the file's container declares, when it is exact (probeVideo's rule); null when it has none,
 * when ffmpeg / ffprobe is not installed, or when ffprobe cannot read the file (OpenCV's open then decides).
 */
async function declaredFrameCount(abs: string): Promise<number | null> {
  try {
    return (await probeVideo(abs, locateFfprobe(locateFfmpeg()))).declaredFrameCount;
  } catch {
    return null;
  }
}

/** VP_SOURCE_UNREADABLE for a file no decoder can read (the same for every file decoder). */
export function unreadable(path: string, why: string, cause?: unknown): VisionpipeError {
  return new VisionpipeError('VP_SOURCE_UNREADABLE', `The input is not a readable video (${why})`, { value: path, cause });
}

/** The n-th frame of a file (media time from its index and rate), read since `readStartMs`. */
export function fileFrame(info: SourceInfo, index: number, mat: Mat, readStartMs: number): Frame {
  const readAtMs = performance.now();
  return { sourceId: info.id, index, timestampMs: (index * 1000) / info.fps, sizeWh: [mat.cols, mat.rows], mat, readAtMs, readMs: readAtMs - readStartMs };
}
