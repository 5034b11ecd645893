import { Observable } from 'rxjs';
import type { FrameSource } from '../../sources/frame-source.js';
import type { Frame } from '../frame.js';
import type { Permits } from '../permits.js';

export interface ReadControl {
  /** Set by Pipeline.stop(): no further frame is read; frames in flight finish normally. */
  stopRequested: boolean;
}

/**
 * Pull-based reading: a frame is taken only after an in-flight permit is held, and the permit comes back only
 * when the sinks are done with a frame (or the frame is dropped). A file therefore never drops a frame, however
 * slow the model: reading simply waits. A live source first waits for a frame *without* a permit (a camera that
 * is down or connecting holds no shared capacity), then queues for a permit; permits are handed out first come,
 * first served, so cameras with a frame ready take turns (round-robin), and each hands over its newest frame.
 * `onEnd` is called when the source itself has no more frames (not on maxFrames or stop). `beforeRead`, when given,
 * runs between taking the permit and reading (just-in-time preprocessing of live sources waits there, so the frame
 * taken is the newest one when the worker is about to be free).
 */
export function readFrames(
  source: FrameSource,
  permits: Permits,
  maxFrames: number | null,
  control: ReadControl,
  onEnd: () => void = () => undefined,
  beforeRead?: () => Promise<void>,
): Observable<Frame> {
  return new Observable<Frame>((subscriber) => {
    let active = true;
    const loop = async () => {
      for (let n = 0; maxFrames === null || n < maxFrames; n++) {
        if (source.frameReady !== undefined && !(await source.frameReady())) {
          onEnd();
          break;
        }
        if (!active || control.stopRequested) break;
        await permits.acquire();
        if (beforeRead !== undefined) await beforeRead();
        if (!active || control.stopRequested) {
          permits.release();
          break;
        }
        const frame = await source.read();
        if (frame === null || !active) {
          frame?.mat.release();
          permits.release();
          if (frame === null) onEnd();
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
