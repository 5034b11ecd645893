import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { FrameSource } from '../sources/frame-source.js';
import { DeliverySink, deliversEvents } from '../delivery/delivery-sink.js';
import { JsonlSink } from './jsonl-sink.js';
import { RoutedVideoSink } from './routed-video-sink.js';
import type { Sink } from './sink.js';

/** Output paths already checked by createPipeline (absolute), and the ffmpeg binary when a video is written. */
export interface SinkOutputs {
  videoPath: string | null;
  eventsPath: string | null;
  ffmpegPath: string | null;
  /** The snapshot folder (created, writable), or null for none. */
  snapshotsDir: string | null;
  /** The clips folder (created, writable), or null for none; ffmpegPath is then set too. */
  clipsDir: string | null;
}

/** The sinks a run writes to, from the config's output section. The caller owns them (closes or aborts each). */
export function openSinks(config: Config, sources: readonly FrameSource[], outputs: SinkOutputs, log: Logger): Sink[] {
  const sinks: Sink[] = [];
  const { videoPath, eventsPath, ffmpegPath } = outputs;
  const { crf, preset, encoderThreads, segmentSeconds, retention } = config.output;
  // Only live sources are segmented: a file is one finite recording and stays one output.
  const liveSourceIds = new Set(sources.filter((s) => s.info.kind === 'live').map((s) => s.info.id));
  if (videoPath !== null && ffmpegPath !== null) {
    sinks.push(new RoutedVideoSink(sources, { pathTemplate: videoPath, ffmpegPath, crf, preset, encoderThreads, segmentSeconds, retention, log }));
  }
  if (eventsPath !== null) {
    const segmented = segmentSeconds !== null && liveSourceIds.size > 0;
    const options = { frameEvents: config.output.frameEvents };
    sinks.push(new JsonlSink(eventsPath, segmented ? { segmentSeconds, retention, liveSourceIds, log } : null, options));
  }
  if (deliversEvents(config.delivery)) sinks.push(new DeliverySink(config.delivery, log));
  if (sinks.length === 0) log.debug('no outputs configured: predictions go to subscribers only');
  return sinks;
}
