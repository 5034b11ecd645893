import { once } from 'node:events';
import { renameSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import ffmpeg from 'fluent-ffmpeg';
import { VisionpipeError } from '../errors.js';
import type { AnnotatedFrame } from '../pipeline/frame.js';
import { partialPathOf } from './output-path.js';
import type { Sink } from './sink.js';

export interface VideoFileSinkOptions {
  path: string;
  ffmpegPath: string;
  sizeWh: readonly [number, number];
  fps: number;
  crf: number;
  preset: string;
}

/**
 * Annotated frames → H.264 MP4 through ffmpeg. Raw BGR frames are piped to ffmpeg's stdin; `write` waits for
 * 'drain' when the pipe is full, so a slow encoder slows the pipeline instead of growing a buffer.
 */
export class VideoFileSink implements Sink {
  readonly name = 'video';
  private readonly input: PassThrough;
  private readonly done: Promise<void>;
  private readonly partial: string;
  private stderrTail: string[] = [];
  private failure: Error | undefined;
  private frames = 0;

  constructor(private readonly options: VideoFileSinkOptions) {
    const [w, h] = options.sizeWh;
    this.partial = partialPathOf(options.path);
    this.input = new PassThrough({ highWaterMark: w * h * 3 * 2 });
    const command = ffmpeg(this.input)
      .setFfmpegPath(options.ffmpegPath)
      .inputFormat('rawvideo')
      .inputOptions(['-pix_fmt', 'bgr24', '-video_size', `${w}x${h}`, '-framerate', String(options.fps)])
      .videoCodec('libx264')
      .outputOptions(['-pix_fmt', 'yuv420p', '-preset', options.preset, '-crf', String(options.crf), '-movflags', '+faststart'])
      .format('mp4')
      .output(this.partial);
    this.done = new Promise<void>((resolve, reject) => {
      command.on('stderr', (line: string) => {
        this.stderrTail.push(line);
        if (this.stderrTail.length > 12) this.stderrTail.shift();
      });
      command.on('end', () => resolve());
      command.on('error', (err: Error) => {
        this.failure = new VisionpipeError('VP_FFMPEG_FAILED', `ffmpeg failed writing ${options.path}: ${err.message}`, {
          hint: `Command: ${options.ffmpegPath} … ${this.partial}. Last stderr lines:\n    ${this.stderrTail.join('\n    ')}`,
          cause: err,
        });
        reject(this.failure);
      });
    });
    this.done.catch(() => undefined);
    command.run();
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
    if (!this.input.write(mat.getData())) await Promise.race([once(this.input, 'drain'), this.done]);
  }

  async close(): Promise<string> {
    this.input.end();
    await this.done;
    renameSync(this.partial, this.options.path);
    return this.options.path;
  }

  async abort(): Promise<string | null> {
    // Ending stdin lets ffmpeg write the moov atom: what was encoded stays a playable MP4.
    this.input.end();
    await this.done.catch(() => undefined);
    return this.frames > 0 ? this.partial : null;
  }
}
