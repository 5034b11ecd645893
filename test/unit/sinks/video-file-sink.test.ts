import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { cv, type Mat } from '../../../src/cv.js';
import type { AnnotatedFrame } from '../../../src/pipeline/frame.js';
import { killAllChildren, runningChildren } from '../../../src/process/children.js';
import { locateFfmpeg } from '../../../src/process/ffmpeg-path.js';
import { VideoFileSink } from '../../../src/sinks/video-file-sink.js';
import { ffprobeFrameCount } from '../../helpers/cli.js';

// Real ffmpeg, real pipe, real signals. 320x240 BGR frames are 225 KiB: a few fill any pipe.
const SIZE_WH: [number, number] = [320, 240];
const dir = mkdtempSync(join(tmpdir(), 'visionpipe-video-sink-'));
const mats: Mat[] = [];

afterEach(() => killAllChildren());
afterAll(() => {
  for (const m of mats) m.release();
  rmSync(dir, { recursive: true, force: true });
});

function sinkTo(name: string, preset = 'ultrafast', stuckMs?: number): { sink: VideoFileSink; path: string; ffmpeg: ChildProcess } {
  const path = join(dir, name);
  const stuck = stuckMs === undefined ? {} : { stuckWriteMs: stuckMs, stuckFinishMs: stuckMs };
  const sink = new VideoFileSink({ path, ffmpegPath: locateFfmpeg().path, sizeWh: SIZE_WH, fps: 25, crf: 30, preset, ...stuck });
  const ffmpeg = runningChildren().find((c) => c.spawnargs.includes(`${path}.partial`));
  if (ffmpeg === undefined) throw new Error('the sink started no tracked ffmpeg child');
  return { sink, path, ffmpeg };
}

function frame(index: number): AnnotatedFrame {
  const mat = new cv.Mat(SIZE_WH[1], SIZE_WH[0], cv.CV_8UC3, [(index * 10) % 256, 128, 64]);
  mats.push(mat);
  const prediction = { sourceId: 'test', frameIndex: index, timestampMs: index * 40, sizeWh: SIZE_WH, result: { task: 'classification', classifications: [] }, latencyMs: 0 };
  return { frame: { sourceId: 'test', index, timestampMs: index * 40, sizeWh: SIZE_WH, mat, readAtMs: 0, readMs: 0 }, prediction } as unknown as AnnotatedFrame;
}

describe('VideoFileSink (real ffmpeg)', () => {
  it('passes output.encoderThreads to x264 (and leaves the thread count to x264 when unset)', async () => {
    const path = join(dir, 'threads.mp4');
    const sink = new VideoFileSink({ path, ffmpegPath: locateFfmpeg().path, sizeWh: SIZE_WH, fps: 25, crf: 30, preset: 'ultrafast', encoderThreads: 1 });
    const args = runningChildren().find((c) => c.spawnargs.includes(`${path}.partial`))?.spawnargs ?? [];
    expect(args.slice(args.indexOf('-threads'), args.indexOf('-threads') + 2)).toEqual(['-threads', '1']);
    for (let i = 0; i < 3; i++) await sink.write(frame(i));
    expect(await sink.close()).toBe(path);
    expect(ffprobeFrameCount(path)).toBe(3);
    const { ffmpeg } = sinkTo('auto-threads.mp4');
    expect(ffmpeg.spawnargs).not.toContain('-threads');
  });

  it('close() finalises a playable MP4 under its final name and reaps ffmpeg', async () => {
    const { sink, path } = sinkTo('ok.mp4');
    for (let i = 0; i < 10; i++) await sink.write(frame(i));
    expect(await sink.close()).toBe(path);
    expect(existsSync(`${path}.partial`)).toBe(false);
    expect(ffprobeFrameCount(path)).toBe(10);
    expect(runningChildren()).toEqual([]);
  });

  it('a hung ffmpeg (frozen) cannot hold up shutdown: close() kills it after the bound and rejects naming why', async () => {
    const { sink, ffmpeg } = sinkTo('hung.mp4', 'ultrafast', 300);
    await sink.write(frame(0));
    process.kill(ffmpeg.pid ?? 0, 'SIGSTOP');
    await expect(sink.close()).rejects.toMatchObject({ code: 'VP_FFMPEG_FAILED', message: expect.stringContaining('did not finish within 0.3 s of the end of its input: killed') });
    expect(ffmpeg.signalCode).toBe('SIGKILL');
  });

  it('abort() keeps what was written as a playable .partial', async () => {
    const { sink, path } = sinkTo('aborted.mp4');
    for (let i = 0; i < 4; i++) await sink.write(frame(i));
    expect(await sink.abort()).toBe(`${path}.partial`);
    expect(ffprobeFrameCount(`${path}.partial`)).toBe(4);
  });

  it('ffmpeg killed while write() waits for drain: that write and close() reject with VP_FFMPEG_FAILED naming the signal', async () => {
    const { sink, path, ffmpeg } = sinkTo('killed.mp4');
    await sink.write(frame(0));
    // A frozen encoder: its pipe fills, so the writer below must end up waiting for 'drain'.
    process.kill(ffmpeg.pid ?? 0, 'SIGSTOP');
    let written = 0;
    const writer = (async () => {
      for (let i = 1; i <= 100; i++) {
        await sink.write(frame(i));
        written++;
      }
    })();
    const settled = writer.then(
      () => 'resolved',
      () => 'rejected',
    );
    // Writes that do not wait resolve in microtasks: after one macrotask turn the writer is done or waiting.
    await new Promise((r) => setImmediate(r));
    expect(await Promise.race([settled, 'pending'])).toBe('pending');
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(100);

    process.kill(ffmpeg.pid ?? 0, 'SIGKILL');
    const expected = { code: 'VP_FFMPEG_FAILED', message: expect.stringMatching(/signal SIGKILL .*while writing .*killed\.mp4[\s\S]*Command: \S*ffmpeg .*killed\.mp4\.partial/) as unknown };
    await expect(writer).rejects.toMatchObject(expected);
    await expect(sink.write(frame(101))).rejects.toMatchObject(expected);
    await expect(sink.close()).rejects.toMatchObject(expected);
    expect(existsSync(path)).toBe(false);
    expect(runningChildren()).toEqual([]);
  });

  it('ffmpeg killed between writes: the next write rejects, and abort() still settles', async () => {
    const { sink, ffmpeg } = sinkTo('killed-idle.mp4');
    await sink.write(frame(0));
    const closed = once(ffmpeg, 'close');
    process.kill(ffmpeg.pid ?? 0, 'SIGKILL');
    await closed;
    await expect(sink.write(frame(1))).rejects.toMatchObject({ code: 'VP_FFMPEG_FAILED', message: expect.stringMatching(/signal SIGKILL/) as unknown });
    // Killed before or after it created its file (that depends on how far it got): abort names the file if, and only if, it exists.
    const kept = await sink.abort();
    const partial = `${join(dir, 'killed-idle.mp4')}.partial`;
    expect(kept).toBe(existsSync(partial) ? partial : null);
  });

  it('ffmpeg failing on its own: close() rejects with the exit code and the tail of its stderr', async () => {
    const { sink } = sinkTo('bad-preset.mp4', 'no-such-preset');
    // ffmpeg opens the encoder on the first frame, so a write may already see the failure; close() always does.
    const writeError = await (async () => {
      for (let i = 0; i < 3; i++) await sink.write(frame(i));
    })().then(
      () => undefined,
      (err: unknown) => err,
    );
    const closeError = await sink.close().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(closeError).toMatchObject({ code: 'VP_FFMPEG_FAILED', message: expect.stringMatching(/exit code [1-9]\d*[\s\S]*Last stderr lines:[\s\S]*preset/i) as unknown });
    if (writeError !== undefined) expect(writeError).toBe(closeError);
    expect(runningChildren()).toEqual([]);
  });
});
