import { Observable } from 'rxjs';
import type { FrameSource } from '../../sources/frame-source.js';
import type { Frame } from '../frame.js';
import type { Permits } from '../permits.js';

export interface ReadControl {
  /** Set by Pipeline.stop(): no further frame is read; frames in flight finish normally. */
  stopRequested: boolean;
}

/**
 * Pull-based reading: a frame is read only after an in-flight permit is held, and the permit comes back only
 * when the sinks are done with a frame (or the frame is dropped). A file therefore never drops a frame, however
 * slow the model: reading simply waits. A live source keeps capturing meanwhile and hands over its newest frame.
 */
export function readFrames(
  source: FrameSource,
  permits: Permits,
  maxFrames: number | null,
  control: ReadControl,
): Observable<Frame> {
  return new Observable<Frame>((subscriber) => {
    let active = true;
    const loop = async () => {
      for (let n = 0; maxFrames === null || n < maxFrames; n++) {
        await permits.acquire();
        if (!active || control.stopRequested) {
          permits.release();
          break;
        }
        if (!active || control.stopRequested) {
          permits.release();
          break;
        }
        const frame = await source.read();
        if (frame === null || !active) {
          permits.release();
          break;
        }
        subscriber.next(frame);
      }
      subscriber.complete();
    };
    loop().catch((err: unknown) => {
      if (active) subscriber.error(err);
    });
    return () => {
      active = false;
    };
  });
}
