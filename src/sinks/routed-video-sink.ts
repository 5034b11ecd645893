import type { AnnotatedFrame } from '../pipeline/frame.js';
import type { FrameSource } from '../sources/frame-source.js';
import type { Sink } from './sink.js';
import { VideoFileSink } from './video-file-sink.js';

export interface RoutedVideoOptions {
  /** Output path; `{source}` is replaced by the source id (required with several sources). */
  pathTemplate: string;
  ffmpegPath: string;
  crf: number;
  preset: string;
}

/** The file name form of a source id: `rtsp://u:***@host:8554/cam` → `rtsp_u_host_8554_cam`, `clip.mp4` → `clip`. */
export function sourceFileName(id: string): string {
  return id.replace(/\.(mp4|avi|mkv|mov|webm|m4v|ts|mpg|mpeg)$/i, '').replace(/:\*\*\*@/g, '_').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'source';
}

/**
 * One MP4 per source, each started on that source's first frame (a live source's size is known only then).
 * A frame whose size changed after a reconnect is resized to the file's size, so the MP4 stays valid.
 */
export class RoutedVideoSink implements Sink {
  readonly name = 'video';
  private readonly sinks = new Map<string, VideoFileSink>();

  constructor(
    private readonly sources: readonly FrameSource[],
    private readonly options: RoutedVideoOptions,
  ) {}

  pathOf(sourceId: string): string {
    return this.options.pathTemplate.replaceAll('{source}', sourceFileName(sourceId));
  }

  async write(frame: AnnotatedFrame): Promise<void> {
    const id = frame.frame.sourceId;
    let sink = this.sinks.get(id);
    if (sink === undefined) {
      const source = this.sources.find((s) => s.info.id === id);
      sink = new VideoFileSink({
        path: this.pathOf(id),
        ffmpegPath: this.options.ffmpegPath,
        sizeWh: frame.frame.sizeWh,
        fps: source?.info.fps ?? 25,
        crf: this.options.crf,
        preset: this.options.preset,
      });
      this.sinks.set(id, sink);
    }
    const [w, h] = sink.sizeWh;
    if (frame.frame.mat.cols !== w || frame.frame.mat.rows !== h) {
      const resized = await frame.frame.mat.resizeAsync(h, w);
      try {
        await sink.write({ ...frame, frame: { ...frame.frame, mat: resized, sizeWh: [w, h] } });
      } finally {
        resized.release();
      }
      return;
    }
    await sink.write(frame);
  }

  async close(): Promise<string> {
    const paths: string[] = [];
    for (const sink of this.sinks.values()) paths.push(await sink.close());
    return paths.join(', ');
  }

  async abort(): Promise<string | null> {
    const kept = await Promise.all([...this.sinks.values()].map((s) => s.abort()));
    const paths = kept.filter((p): p is string => p !== null);
    return paths.length > 0 ? paths.join(', ') : null;
  }
}

