import type { SourceConfig } from '../config/schema.js';
import { FfmpegFileSource } from './ffmpeg-file-source.js';
import { FileSource } from './file-source.js';
import type { FrameSource } from './frame-source.js';
import { LiveSource } from './live-source.js';
import { isLiveUri } from './redact-uri.js';
import { sourceFileName } from './source-file-name.js';

/**
 * Opens each configured source. Ids are unique, and so are their file names (`{source}` in output paths): a second
 * `clip.mp4` becomes `clip.mp4#2`, and so does `rtsp://h/cam/` beside `rtsp://h/cam` (both would be `rtsp_h_cam`).
 */
export async function openSources(configs: readonly SourceConfig[]): Promise<FrameSource[]> {
  const opened: FrameSource[] = [];
  const ids = new Set<string>();
  const fileNames = new Set<string>();
  try {
    for (const config of configs) {
      const live = config.kind === 'live' || (config.kind === 'auto' && isLiveUri(config.uri));
      const source = live ? new LiveSource(resolveBackpressure(config, 'latest')) : await openFile(config);
      const base = source.info.id;
      for (let n = 2; ids.has(source.info.id) || fileNames.has(sourceFileName(source.info.id)); n++) source.info.id = `${base}#${n}`;
      ids.add(source.info.id);
      fileNames.add(sourceFileName(source.info.id));
      opened.push(source);
    }
  } catch (err) {
    await Promise.all(opened.map((s) => s.close()));
    throw err;
  }
  return opened;
}

function resolveBackpressure(config: SourceConfig, auto: 'all' | 'latest'): SourceConfig {
  return config.backpressure === 'auto' ? { ...config, backpressure: auto } : config;
}

/** A file through the decoder its config names: OpenCV's VideoCapture, or the ffmpeg binary over a pipe. */
function openFile(config: SourceConfig): Promise<FrameSource> {
  return config.decoder === 'ffmpeg' ? FfmpegFileSource.open(config.uri) : FileSource.open(config.uri);
}
