import { VisionpipeError, isVisionpipeError, messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import type { Frame } from './frame.js';

/**
 * The rule for frames whose inference fails: each one is skipped (the caller counts it as `inference-error`),
 * logged and reported as a `frame-error` event; more than `maxInARow` failures in a row (a model that fails on
 * everything, a crashed worker) fail the run with the last error. A success resets the count.
 */
export class FrameErrorPolicy {
  private inARow = 0;

  constructor(
    private readonly maxInARow: number,
    private readonly log: Logger,
    private readonly emitEvent: (event: Record<string, unknown>) => void,
  ) {}

  failed(frame: Frame, err: unknown): void {
    this.inARow++;
    const error = isVisionpipeError(err)
      ? err
      : new VisionpipeError('VP_INFERENCE_FAILED', `Inference failed on frame ${frame.index} of ${frame.sourceId}: ${messageOf(err)}`, { cause: err });
    const message = error.message.split('\n')[0] ?? '';
    this.log.warn({ source: frame.sourceId, frameIndex: frame.index, code: error.code, inARow: this.inARow }, `frame skipped: ${message}`);
    this.emitEvent({ type: 'frame-error', source: frame.sourceId, frameIndex: frame.index, atMs: Date.now(), code: error.code, message });
    if (this.inARow > this.maxInARow) {
      throw new VisionpipeError(error.code, `${this.inARow} frames in a row failed inference (pipeline.maxFailedFramesInARow is ${this.maxInARow}); the last: ${message}`, {
        hint: error.hint,
        cause: error,
      });
    }
  }

  succeeded(): void {
    this.inARow = 0;
  }
}
