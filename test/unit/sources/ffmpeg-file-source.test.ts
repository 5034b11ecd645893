import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load-config.js';
import { cv, type Mat } from '../../../src/cv.js';
import { runningChildren } from '../../../src/process/children.js';
import { FfmpegFileSource } from '../../../src/sources/ffmpeg-file-source.js';
import { FileSource } from '../../../src/sources/file-source.js';
import type { FrameSource } from '../../../src/sources/frame-source.js';
import { openSources } from '../../../src/sources/open-source.js';

/** Real ffmpeg decoding real (tiny, generated) files, checked against OpenCV's decode of the same files. */

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-ffsrc-'));
const raw = join(dir, 'raw-bgr.avi');
const h264 = join(dir, 'h264.mp4');
const rotated = join(dir, 'rotated.mp4');
const mkv = join(dir, 'clip.mkv');
const long = join(dir, 'long.mp4');
const truncated = join(dir, 'truncated.mp4');

function ffmpeg(...args: string[]): void {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')} failed: ${r.stderr}`);
}

const TESTSRC = ['-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=10'];

beforeAll(() => {
  // Uncompressed BGR: both decoders must give exactly these bytes.
  ffmpeg(...TESTSRC, '-frames:v', '12', '-c:v', 'rawvideo', '-pix_fmt', 'bgr24', raw);
  ffmpeg(...TESTSRC, '-frames:v', '12', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', h264);
  ffmpeg('-i', h264, '-c', 'copy', '-metadata:s:v', 'rotate=90', rotated);
  ffmpeg(...TESTSRC, '-frames:v', '12', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', mkv);
  // 600 frames of 18 KiB: 11 MB of raw output, far more than the pipe holds.
  ffmpeg(...TESTSRC, '-frames:v', '600', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', long);
  // The index (moov) first, so cutting the tail leaves a file that opens and declares more frames than it has.
  const full = join(dir, 'full.mp4');
  ffmpeg(...TESTSRC, '-frames:v', '50', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', full);
  writeFileSync(truncated, readFileSync(full).subarray(0, Math.floor(statSync(full).size * 0.6)));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function readAll(source: FrameSource): Promise<Mat[]> {
  const mats: Mat[] = [];
  for (let f = await source.read(); f !== null; f = await source.read()) mats.push(f.mat);
  return mats;
}

/** Largest absolute difference between two BGR images of the same size. */
function maxAbsDiff(a: Mat, b: Mat): number {
  expect([a.cols, a.rows, a.type]).toEqual([b.cols, b.rows, b.type]);
  const x = a.getData();
  const y = b.getData();
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  return worst;
}

async function bothDecoders(path: string): Promise<{ ff: FfmpegFileSource; cvSource: FileSource; ffMats: Mat[]; cvMats: Mat[] }> {
  const ff = await FfmpegFileSource.open(path);
  const cvSource = await FileSource.open(path);
  const ffMats = await readAll(ff);
  const cvMats = await readAll(cvSource);
  await Promise.all([ff.close(), cvSource.close()]);
  return { ff, cvSource, ffMats, cvMats };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('FfmpegFileSource', () => {
  it('decodes an uncompressed clip to exactly the frames OpenCV decodes, with the same info', async () => {
    const { ff, cvSource, ffMats, cvMats } = await bothDecoders(raw);
    expect(ffMats).toHaveLength(12);
    expect(cvMats).toHaveLength(12);
    for (let i = 0; i < 12; i++) expect(maxAbsDiff(ffMats[i]!, cvMats[i]!), `frame ${i}`).toBe(0);
    expect(ffMats[0]!.type).toBe(cv.CV_8UC3);
    expect(ff.info).toEqual({ ...cvSource.info });
    expect(ff.info).toMatchObject({ kind: 'file', id: 'raw-bgr.avi', sizeWh: [96, 64], fps: 10, frameCount: 12 });
    expect(ff.framesRead).toBe(12);
    expect(cvSource.framesRead).toBe(12);
  });

  it('decodes H.264 (4:2:0) within a small tolerance of OpenCV', async () => {
    const { ff, cvSource, ffMats, cvMats } = await bothDecoders(h264);
    expect(ffMats).toHaveLength(12);
    expect(cvMats).toHaveLength(12);
    expect(ff.info).toEqual({ ...cvSource.info });
    expect(ff.info.frameCount).toBe(12);
    // Both convert YUV 4:2:0 to BGR with libswscale; only rounding may differ.
    for (let i = 0; i < 12; i++) expect(maxAbsDiff(ffMats[i]!, cvMats[i]!), `frame ${i}`).toBeLessThanOrEqual(2);
  });

  it('applies the rotation in the file metadata (display matrix) as FFmpeg and players do', async () => {
    // The display matrix says: turn 90° counterclockwise to show (ffprobe's `rotation`, av_display_rotation_get's
    // convention). OpenCV 4.6, Debian 12's, turns it the other way (opencv/opencv#22088, fixed in 4.7): upside down.
    const probed = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream_side_data=rotation', '-of', 'csv=p=0', rotated], {
      encoding: 'utf8',
    });
    expect(probed.stdout.trim()).toBe('90');
    const { ffMats, cvMats: upright } = await bothDecoders(h264);
    const source = await FfmpegFileSource.open(rotated);
    const turned = await readAll(source);
    await source.close();
    expect(source.info.sizeWh).toEqual([64, 96]);
    expect(turned).toHaveLength(12);
    for (let i = 0; i < 12; i++) {
      expect([turned[i]!.cols, turned[i]!.rows]).toEqual([64, 96]);
      expect(maxAbsDiff(turned[i]!, upright[i]!.rotate(cv.ROTATE_90_COUNTERCLOCKWISE)), `frame ${i}`).toBeLessThanOrEqual(2);
    }
    expect(ffMats).toHaveLength(12);
  });

  it('reads only as fast as it is asked (ffmpeg waits on the full pipe), and close() kills and reaps ffmpeg', async () => {
    const before = new Set(runningChildren());
    const source = await FfmpegFileSource.open(long);
    const started = runningChildren().filter((c) => !before.has(c));
    expect(started).toHaveLength(1);
    const child = started[0]!;
    const pid = child.pid!;
    expect(await source.read()).not.toBeNull();
    await new Promise((r) => setTimeout(r, 500));
    // Decoding 600 tiny frames takes ffmpeg well under 500 ms; it is still there because nobody read them.
    expect(child.exitCode).toBeNull();
    expect(isAlive(pid)).toBe(true);
    await source.close();
    expect(isAlive(pid)).toBe(false);
    expect(runningChildren()).not.toContain(child);
    expect(await source.read()).toBeNull();
    await source.close();
  });

  it('a decoder killed mid-file is an error naming how, never a quietly short file', async () => {
    const before = new Set(runningChildren());
    const source = await FfmpegFileSource.open(long);
    const child = runningChildren().find((c) => !before.has(c))!;
    (await source.read())?.mat.release();
    process.kill(child.pid!, 'SIGKILL');
    const err = await (async () => {
      for (;;) {
        const frame = await source.read();
        if (frame === null) return null;
        frame.mat.release();
      }
    })().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'VP_SOURCE_UNREADABLE', message: expect.stringMatching(/the ffmpeg decoder was killed by SIGKILL after \d+ frames/) });
    await source.close();
  });

  it('reaps ffmpeg once the file has been read to the end', async () => {
    const before = new Set(runningChildren());
    const source = await FfmpegFileSource.open(raw);
    const child = runningChildren().find((c) => !before.has(c))!;
    expect(await readAll(source)).toHaveLength(12);
    await source.close();
    expect(isAlive(child.pid!)).toBe(false);
    expect(runningChildren()).not.toContain(child);
  });

  it('fails at open with the same codes and messages as FileSource', async () => {
    const notVideo = join(dir, 'notes.mp4');
    writeFileSync(notVideo, 'not a video at all\n');
    for (const path of [join(dir, 'missing.mp4'), dir, notVideo]) {
      const before = runningChildren().length;
      const ffError = (await FfmpegFileSource.open(path).catch((e: unknown) => e)) as Error & { code?: string };
      const cvError = (await FileSource.open(path).catch((e: unknown) => e)) as Error & { code?: string };
      expect(ffError.code, path).toBe(cvError.code);
      // Same sentence; only the decoder's own reason (in parentheses) may differ.
      expect(ffError.message.split(/[(;]/)[0], path).toBe(cvError.message.split(/[(;]/)[0]);
      expect(runningChildren()).toHaveLength(before);
    }
    await expect(FfmpegFileSource.open(join(dir, 'missing.mp4'))).rejects.toMatchObject({ code: 'VP_SOURCE_NOT_FOUND' });
    await expect(FfmpegFileSource.open(notVideo)).rejects.toMatchObject({ code: 'VP_SOURCE_UNREADABLE' });
  });

  it('reads a file cut short partially: framesRead below the frame count its container declares', async () => {
    const source = await FfmpegFileSource.open(truncated);
    const mats = await readAll(source);
    await source.close();
    expect(source.info.frameCount).toBe(50);
    expect(source.framesRead).toBe(mats.length);
    expect(source.framesRead).toBeGreaterThan(0);
    expect(source.framesRead).toBeLessThan(50);
  });

  it('gives no frame count for a container that only estimates one (mkv), and is what decoder: ffmpeg opens', async () => {
    const config = parseConfig({ source: [{ uri: mkv, decoder: 'ffmpeg' }, { uri: mkv }] });
    const [viaFfmpeg, viaOpenCv] = await openSources(config.source);
    try {
      expect(viaFfmpeg).toBeInstanceOf(FfmpegFileSource);
      expect(viaOpenCv).toBeInstanceOf(FileSource);
      expect(viaFfmpeg!.info.frameCount).toBeNull();
      expect(viaOpenCv!.info.frameCount).toBeNull();
      expect(await readAll(viaFfmpeg!)).toHaveLength(12);
    } finally {
      await Promise.all([viaFfmpeg?.close(), viaOpenCv?.close()]);
    }
  });
});
