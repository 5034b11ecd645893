import { createWriteStream, renameSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Logger } from '../log.js';
import type { AnnotatedFrame } from '../pipeline/frame.js';
import { stampEvent } from '../pipeline/event-stamp.js';
import { toEventJson } from '../pipeline/prediction-event.js';
import { partialPathOf } from './output-path.js';
import type { RetentionLimits } from './retention.js';
import { SegmentedOutput, type SegmentFile } from './segmented-output.js';
import type { Sink } from './sink.js';

/** One line of the events file and the time (epoch ms) it belongs to, which picks its segment. */
export interface JsonLine {
  text: string;
  timeMs: number;
}

/** One JSON-lines file: written as `<path>.partial`, renamed to `path` when closed. */
export class JsonlFile implements SegmentFile<JsonLine> {
  private readonly stream: WriteStream;
  private readonly partial: string;
  private failure: Error | undefined;
  private lines = 0;

  constructor(private readonly path: string) {
    this.partial = partialPathOf(path);
    this.stream = createWriteStream(this.partial);
    this.stream.on('error', (err) => (this.failure = err));
  }

  /** Resolves when the stream can take more (its backpressure). */
  async write(line: JsonLine): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    this.lines++;
    if (!this.stream.write(`${line.text}\n`)) await once(this.stream, 'drain');
  }

  /** Without waiting: for the few state events that go between prediction lines. */
  writeNow(line: JsonLine): void {
    if (this.failure !== undefined || this.stream.writableEnded) return;
    this.lines++;
    this.stream.write(`${line.text}\n`);
  }

  async close(): Promise<string> {
    await this.end();
    if (this.failure !== undefined) throw this.failure;
    renameSync(this.partial, this.path);
    return this.path;
  }

  async abort(): Promise<string | null> {
    await this.end().catch(() => undefined);
    return this.lines > 0 ? this.partial : null;
  }

  private async end(): Promise<void> {
    if (this.stream.writableFinished || this.stream.destroyed) return;
    this.stream.end();
    await once(this.stream, 'finish');
  }
}

/** How the events file is cut into time segments (when a source is live). */
export interface JsonlSegmentOptions {
  segmentSeconds: number;
  retention: RetentionLimits;
  /** Predictions of these sources carry epoch-ms timestamps and are placed by them; others by `nowMs`. */
  liveSourceIds: ReadonlySet<string>;
  /** Clock for lines without a time of their own and for retention ages (epoch ms). Default Date.now. */
  nowMs?: () => number;
  log?: Logger;
}

/**
 * One JSON line per frame (frame index, timestamp, results, stage timings), with state events in between. With
 * `segments`, the lines go to time segments `<stem>.<UTC start>.jsonl`, placed by each prediction's timestamp
 * and each event's `atMs`.
 */
export class JsonlSink implements Sink {
  readonly name = 'events';
  /** The one file, or the segmented output (which has the same write / close / abort). */
  private readonly output: SegmentFile<JsonLine>;
  /** The file a line goes to now (rolling over to a new segment when it is time). */
  private readonly fileFor: (line: JsonLine) => JsonlFile;
  private readonly nowMs: () => number;
  private ended = false;

  /** With `frameEvents: false`, the per-frame `prediction` lines are left out (object and state events only). */
  constructor(
    path: string,
    private readonly segments: JsonlSegmentOptions | null = null,
    private readonly options: { frameEvents: boolean } = { frameEvents: true },
  ) {
    this.nowMs = segments?.nowMs ?? Date.now;
    if (segments === null) {
      const file = new JsonlFile(path);
      this.output = file;
      this.fileFor = () => file;
    } else {
      const segmented = new SegmentedOutput<JsonLine, JsonlFile>({
        path,
        segmentSeconds: segments.segmentSeconds,
        retention: segments.retention,
        timeMsOf: (line) => line.timeMs,
        openFile: (segmentPath) => new JsonlFile(segmentPath),
        nowMs: this.nowMs,
        ...(segments.log !== undefined ? { log: segments.log } : {}),
      });
      this.output = segmented;
      this.fileFor = (line) => segmented.fileFor(line);
    }
  }

  async write(frame: AnnotatedFrame): Promise<void> {
    if (!this.options.frameEvents) return;
    const { prediction } = frame;
    // A file source's timestamps are media time from 0, not a date: its lines go by the clock.
    const live = this.segments?.liveSourceIds.has(prediction.sourceId) === true;
    await this.output.write({ text: JSON.stringify(toEventJson(prediction)), timeMs: live ? prediction.timestampMs : this.nowMs() });
  }

  /** State events go in between prediction lines, in the order they happened. */
  writeEvent(event: Record<string, unknown>): void {
    if (this.ended) return;
    const timeMs = typeof event['atMs'] === 'number' ? event['atMs'] : this.nowMs();
    const line = { text: JSON.stringify(stampEvent(event)), timeMs };
    this.fileFor(line).writeNow(line);
  }

  /** Resolves with the path, or `out/all.*.jsonl (N segments)` when segmented. */
  async close(): Promise<string> {
    this.ended = true;
    return this.output.close();
  }

  async abort(): Promise<string | null> {
    this.ended = true;
    return this.output.abort();
  }
}
