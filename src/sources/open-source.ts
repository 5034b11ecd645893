import type { SourceConfig } from '../config/schema.js';
import { FfmpegFileSource } from './ffmpeg-file-source.js';
import { FileSource } from './file-source.js';
import type { FrameSource } from './frame-source.js';
import { LiveSource } from './live-source.js';
import { isLiveUri } from './redact-uri.js';

/** Opens each configured source; ids are unique (a second `clip.mp4` becomes `clip.mp4#2`). */
export async function openSources(configs: readonly SourceConfig[]): Promise<FrameSource[]> {
  const opened: FrameSource[] = [];
  const seen = new Map<string, number>();
  try {
    for (const config of configs) {
      const live = config.kind === 'live' || (config.kind === 'auto' && isLiveUri(config.uri));
      const source = live ? new LiveSource(resolveBackpressure(config, 'latest')) : await openFile(config);
      const n = (seen.get(source.info.id) ?? 0) + 1;
      seen.set(source.info.id, n);
      if (n > 1) source.info.id = `${source.info.id}#${n}`;
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
