import type { AnnotatedFrame } from '../pipeline/frame.js';

/** Where finished frames go. `write` resolves when the sink can take the next frame (its backpressure). */
export interface Sink {
  readonly name: string;
  write(frame: AnnotatedFrame): Promise<void>;
  /** Events that are not frames (source state changes); sinks without a use for them ignore them. */
  writeEvent?(event: Record<string, unknown>): void;
  /** A source will send no more frames (sinks that show sources' states use it). */
  sourceEnded?(sourceId: string): void;
  /** Flushes and finalises; resolves with the path of what was written. */
  close(): Promise<string>;
  /**
   * Stops after a failure elsewhere: keeps what was written, finalised where possible, under a `.partial` name
   * so it cannot be mistaken for a complete output. Resolves with that path (or null if nothing was written).
   */
  abort(): Promise<string | null>;
}
