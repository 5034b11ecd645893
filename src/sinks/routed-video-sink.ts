import type { Logger } from '../log.js';
import type { AnnotatedFrame } from '../pipeline/frame.js';
import type { FrameSource } from '../sources/frame-source.js';
import { sourceFileName } from '../sources/source-file-name.js';
import type { RetentionLimits } from './retention.js';
import { SegmentedOutput, type SegmentFile } from './segmented-output.js';
import type { Sink } from './sink.js';
import { VideoFileSink } from './video-file-sink.js';

export interface RoutedVideoOptions {
  /** Output path; `{source}` is replaced by the source id (required with several sources). */
  pathTemplate: string;
  ffmpegPath: string;
  crf: number;
  preset: string;
  /** x264 threads; null / absent = x264's choice. */
  encoderThreads?: number | null;
  /** Live sources: one MP4 per this many seconds (`<stem>.<UTC start>.mp4`); null (the default) = one file. */
  segmentSeconds?: number | null;
  /** Deletes a live source's oldest segments beyond these bounds. Default: keep all. */
  retention?: RetentionLimits;
  /** Clock for retention ages (epoch ms). Default Date.now. */
  nowMs?: () => number;
  log?: Logger;
}

/** A source's video: one file, or its segmented output. */
interface SourceVideo {
  output: SegmentFile<AnnotatedFrame>;
  /** Every frame is written at the size of the source's first frame. */
  sizeWh: readonly [number, number];
}


/**
 * One MP4 per source, each started on that source's first frame (a live source's size is known only then); a live
 * source's MP4 is written in time segments when `segmentSeconds` is set. A frame whose size changed after a
 * reconnect is resized to the size of the source's first frame, so every file (and segment) stays valid.
 */
export class RoutedVideoSink implements Sink {
  readonly name = 'video';
  private readonly videos = new Map<string, SourceVideo>();

  constructor(
    private readonly sources: readonly FrameSource[],
    private readonly options: RoutedVideoOptions,
  ) {}

  pathOf(sourceId: string): string {
    return this.options.pathTemplate.replaceAll('{source}', sourceFileName(sourceId));
  }

  async write(frame: AnnotatedFrame): Promise<void> {
    const id = frame.frame.sourceId;
    const video = this.videos.get(id) ?? this.open(frame);
    const [w, h] = video.sizeWh;
    if (frame.frame.mat.cols !== w || frame.frame.mat.rows !== h) {
      const resized = await frame.frame.mat.resizeAsync(h, w);
      try {
        await video.output.write({ ...frame, frame: { ...frame.frame, mat: resized, sizeWh: [w, h] } });
      } finally {
        resized.release();
      }
      return;
    }
    await video.output.write(frame);
  }

  /** Finalises every source's video, even when one fails (that error is then thrown, naming what was kept). */
  async close(): Promise<string> {
    const results = await Promise.allSettled([...this.videos.values()].map((v) => v.output.close()));
    const written = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      const err: unknown = failed.reason;
      if (err instanceof Error && written.length > 0) err.message += `\nThe other videos were finalised: ${written.join(', ')}`;
      throw err;
    }
    return written.join(', ');
  }

  async abort(): Promise<string | null> {
    const kept = await Promise.all([...this.videos.values()].map((v) => v.output.abort().catch(() => null)));
    const paths = kept.filter((p): p is string => p !== null);
    return paths.length > 0 ? paths.join(', ') : null;
  }

  private open(first: AnnotatedFrame): SourceVideo {
    const id = first.frame.sourceId;
    const source = this.sources.find((s) => s.info.id === id);
    const sizeWh = first.frame.sizeWh;
    const { ffmpegPath, crf, preset, encoderThreads = null, segmentSeconds = null, retention, nowMs, log } = this.options;
    const openFile = (path: string) => new VideoFileSink({ path, ffmpegPath, sizeWh, fps: source?.info.fps ?? 25, crf, preset, encoderThreads });
    const output =
      source?.info.kind === 'live' && segmentSeconds !== null
        ? new SegmentedOutput<AnnotatedFrame, VideoFileSink>({
            path: this.pathOf(id),
            segmentSeconds,
            retention: retention ?? { maxAgeSeconds: null, maxTotalBytes: null },
            timeMsOf: (f) => f.frame.timestampMs,
            openFile,
            ...(nowMs !== undefined ? { nowMs } : {}),
            ...(log !== undefined ? { log } : {}),
          })
        : openFile(this.pathOf(id));
    const video = { output, sizeWh };
    this.videos.set(id, video);
    return video;
  }
}
