import { createWriteStream, renameSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import type { AnnotatedFrame } from '../pipeline/frame.js';
import { toEventJson } from '../pipeline/prediction-event.js';
import { partialPathOf } from './output-path.js';
import type { Sink } from './sink.js';

/** One JSON line per frame: frame index, timestamp, results, stage timings. */
export class JsonlSink implements Sink {
  readonly name = 'events';
  private readonly stream: WriteStream;
  private readonly partial: string;
  private failure: Error | undefined;
  private lines = 0;

  constructor(private readonly path: string) {
    this.partial = partialPathOf(path);
    this.stream = createWriteStream(this.partial);
    this.stream.on('error', (err) => (this.failure = err));
  }

  async write(frame: AnnotatedFrame): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    this.lines++;
    if (!this.stream.write(`${JSON.stringify(toEventJson(frame.prediction))}\n`)) await once(this.stream, 'drain');
  }

  /** State events go in between prediction lines, in the order they happened. */
  writeEvent(event: Record<string, unknown>): void {
    if (this.failure === undefined && !this.stream.writableEnded) this.stream.write(`${JSON.stringify(event)}\n`);
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
