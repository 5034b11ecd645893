import { existsSync, renameSync } from 'node:fs';
import { VisionpipeError } from '../errors.js';
import type { AnnotatedFrame } from '../pipeline/frame.js';
import { EVEN_SIZE, RawVideoEncoder } from '../process/raw-video-encoder.js';
import { partialPathOf } from './output-path.js';
import type { Sink } from './sink.js';

export interface VideoFileSinkOptions {
  path: string;
  ffmpegPath: string;
  sizeWh: readonly [number, number];
  fps: number;
  crf: number;
  preset: string;
  /** x264 threads; null / absent = x264's choice (1.5 per core). */
  encoderThreads?: number | null;
  /** A write that waits longer than this for ffmpeg to take a frame kills it (hung). Default 60 s. */
  stuckWriteMs?: number;
  /** ffmpeg not done this long after the end of its input is killed (hung). Default 30 s. */
  stuckFinishMs?: number;
}

/**
 * Annotated frames → H.264 MP4 through one ffmpeg (a RawVideoEncoder: raw BGR frames on its stdin, backpressure,
 * hung encoders killed). The file is written under `.partial` and renamed when ffmpeg has finished it; ending
 * ffmpeg's stdin is what makes it write the MP4 index (moov), so an aborted run still leaves a playable file.
 */
export class VideoFileSink implements Sink {
  readonly name = 'video';
  private readonly encoder: RawVideoEncoder;
  private readonly partial: string;
  private frames = 0;

  constructor(private readonly options: VideoFileSinkOptions) {
    const [w, h] = options.sizeWh;
    this.partial = partialPathOf(options.path);
    const args = [
      ...['-hide_banner', '-nostats', '-loglevel', 'warning'],
      ...['-f', 'rawvideo', '-pix_fmt', 'bgr24', '-video_size', `${w}x${h}`, '-framerate', String(options.fps), '-i', 'pipe:0'],
      ...['-vf', EVEN_SIZE, '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', options.preset, '-crf', String(options.crf)],
      ...(options.encoderThreads == null ? [] : ['-threads', String(options.encoderThreads)]),
      ...['-movflags', '+faststart', '-f', 'mp4', '-y', this.partial],
    ];
    this.encoder = new RawVideoEncoder({
      ffmpegPath: options.ffmpegPath,
      args,
      frameBytes: w * h * 3,
      doing: `while writing ${options.path}`,
      ...(options.stuckWriteMs === undefined ? {} : { stuckWriteMs: options.stuckWriteMs }),
      ...(options.stuckFinishMs === undefined ? {} : { stuckFinishMs: options.stuckFinishMs }),
    });
  }

  get sizeWh(): readonly [number, number] {
    return this.options.sizeWh;
  }

  async write(frame: AnnotatedFrame): Promise<void> {
    const failure = this.encoder.failure;
    if (failure !== undefined) throw failure;
    const { mat } = frame.frame;
    const [w, h] = this.options.sizeWh;
    if (mat.cols !== w || mat.rows !== h) {
      throw new VisionpipeError('VP_FFMPEG_FAILED', `Frame ${frame.frame.index} is ${mat.cols}x${mat.rows}, the video is ${w}x${h}`, {
        hint: 'All frames of one output video must have the same size.',
      });
    }
    this.frames++;
    await this.encoder.write(mat.getData());
  }

  /** Ends ffmpeg's input (it then writes the MP4 index and exits) and renames the file to its final name. */
  async close(): Promise<string> {
    await this.encoder.finish();
    renameSync(this.partial, this.options.path);
    return this.options.path;
  }

  async abort(): Promise<string | null> {
    // Ending stdin lets ffmpeg write the moov atom: what was encoded stays a playable MP4.
    await this.encoder.abort();
    // ffmpeg may have failed before creating the file (an unwritable place): never name a file that is not there.
    return this.frames > 0 && existsSync(this.partial) ? this.partial : null;
  }
}
