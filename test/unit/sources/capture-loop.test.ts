import { describe, expect, it } from 'vitest';
import { cv, type Mat } from '../../../src/cv.js';
import { CaptureLoop } from '../../../src/sources/capture/capture-loop.js';
import type { CaptureSettings, FromCapture } from '../../../src/sources/capture/capture-protocol.js';
import type { Capture } from '../../../src/sources/capture/open-video-capture.js';

/** A camera at `fps` on a fake clock: each read advances the clock by one frame interval. */
function cameraAt(fps: number, frames: number, clock: { nowMs: number }): Capture {
  let served = 0;
  return {
    readAsync: async (): Promise<Mat> => {
      if (served >= frames) return new cv.Mat();
      served++;
      clock.nowMs += 1000 / fps;
      return new cv.Mat(2, 2, cv.CV_8UC3, [served, 0, 0]);
    },
    get: () => fps,
    release: () => undefined,
  };
}

const settings = (over: Partial<CaptureSettings> = {}): CaptureSettings => ({
  uri: 'rtsp://cam/x',
  capture: { transport: 'tcp', openTimeoutMs: 1000, readTimeoutMs: 1000, lowDelay: true },
  maxFps: null,
  backpressure: 'latest',
  maxQueuedFrames: 8,
  ...over,
});

/** Runs a loop whose parent acknowledges every frame at once; resolves with everything it said. */
function runLoop(capture: Capture, s: CaptureSettings, clock: { nowMs: number }): Promise<FromCapture[]> {
  return new Promise((resolve) => {
    const said: FromCapture[] = [];
    const loop: CaptureLoop = new CaptureLoop(
      () => capture,
      (msg) => {
        said.push(msg);
        if (msg.type === 'frame') queueMicrotask(() => loop.handle({ type: 'ack' }));
      },
      () => resolve(said),
      () => clock.nowMs,
    );
    loop.handle({ type: 'open', settings: s });
  });
}

describe('CaptureLoop', () => {
  it('maxFps passes on an even 10 of every 25 frames a second and counts the rest as fps-cap', async () => {
    const clock = { nowMs: 0 };
    const said = await runLoop(cameraAt(25, 250, clock), settings({ maxFps: 10 }), clock);
    const frames = said.filter((m) => m.type === 'frame');
    const end = said.at(-1);
    expect(end?.type).toBe('ended');
    // 10 s of a 25 fps camera capped at 10 fps.
    expect(frames.length).toBeGreaterThanOrEqual(99);
    expect(frames.length).toBeLessThanOrEqual(101);
    expect(end?.type === 'ended' && end.drops['fps-cap']).toBe(250 - frames.length);
  });

  it('a cap below the stall timeout still says once a second that the camera is alive', async () => {
    const clock = { nowMs: 0 };
    const said = await runLoop(cameraAt(25, 250, clock), settings({ maxFps: 0.1 }), clock);
    // 10 s at 0.1 fps: the frames at 0 s and at 10 s.
    expect(said.filter((m) => m.type === 'frame')).toHaveLength(2);
    const alive = said.filter((m) => m.type === 'alive');
    // 10 s of skipped frames: one `alive` per second, carrying the fps-cap count so far.
    expect(alive.length).toBeGreaterThanOrEqual(9);
    expect(alive.length).toBeLessThanOrEqual(10);
    expect(alive.at(-1)?.type === 'alive' && alive.at(-1)?.drops['fps-cap']).toBeGreaterThan(200);
  });

  it('without a cap every frame is passed on when the parent keeps up, and the end says why', async () => {
    const clock = { nowMs: 0 };
    const said = await runLoop(cameraAt(25, 30, clock), settings(), clock);
    expect(said[0]).toEqual({ type: 'opened', fps: 25 });
    expect(said.filter((m) => m.type === 'frame')).toHaveLength(30);
    expect(said.at(-1)).toMatchObject({ type: 'ended', reason: 'stream ended', connected: true });
  });

  it('a camera that cannot be opened ends at once with the reason, credentials hidden', async () => {
    const said = await new Promise<FromCapture[]>((resolve) => {
      const out: FromCapture[] = [];
      const loop = new CaptureLoop(
        (uri) => {
          throw new Error(`cannot open ${uri}`);
        },
        (m) => out.push(m),
        () => resolve(out),
      );
      loop.handle({ type: 'open', settings: settings({ uri: 'rtsp://admin:pw@cam/x' }) });
    });
    expect(said).toEqual([{ type: 'ended', reason: 'could not connect (cannot open rtsp://admin:***@cam/x)', connected: false, drops: expect.any(Object) }]);
  });
});
