import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { cv } from '../../src/cv.js';
import type { AnnotatedFrame } from '../../src/pipeline/frame.js';
import { noDrops, type FrameSource } from '../../src/sources/frame-source.js';
import { locateFfmpeg } from '../../src/process/ffmpeg-path.js';
import { RoutedVideoSink } from '../../src/sinks/routed-video-sink.js';
import { ffprobeFrameCount } from '../helpers/cli.js';

const T0 = Date.UTC(2026, 10, 27, 7, 35, 0); // 07:35:00 UTC
const FPS = 10;
const timingsMs = { read: 0, preprocess: 0, queue: 0, infer: 0, postprocess: 0, track: 0, annotate: 0 };

/** A source as the sinks see it: only its info matters here. */
const sourceOf = (kind: 'live' | 'file', id: string): FrameSource => ({
  info: { kind, id, sizeWh: [64, 48], fps: FPS, frameCount: null },
  drops: noDrops(),
  read: async () => null,
  close: async () => undefined,
});
const camera = sourceOf('live', 'cam');

/** Writes 64x48 frames stamped `fromSeconds` … `toSeconds` after T0 (inclusive), one per 1/FPS s. */
async function feed(sink: RoutedVideoSink, fromSeconds: number, toSeconds: number, sourceId = 'cam', t0Ms = T0): Promise<number> {
  let n = 0;
  for (let tenths = Math.round(fromSeconds * FPS); tenths <= Math.round(toSeconds * FPS); tenths++, n++) {
    const mat = new cv.Mat(48, 64, cv.CV_8UC3, [(tenths * 7) % 256, 128, 255 - ((tenths * 7) % 256)]);
    const timestampMs = t0Ms + (tenths * 1000) / FPS;
    const sizeWh: [number, number] = [64, 48];
    const frame: AnnotatedFrame = {
      frame: { sourceId, index: tenths, timestampMs, sizeWh, mat, readAtMs: 0, readMs: 0 },
      prediction: { sourceId, frameIndex: tenths, timestampMs, sizeWh, result: { task: 'detection', detections: [] }, latencyMs: 0, timingsMs },
    };
    try {
      await sink.write(frame);
    } finally {
      mat.release();
    }
  }
  return n;
}

const dir = mkdtempSync(join(tmpdir(), 'vp-segments-it-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ffmpegPath = locateFfmpeg().path;
const open = (retention = { maxAgeSeconds: null as number | null, maxTotalBytes: null as number | null }, nowMs?: () => number) =>
  new RoutedVideoSink([camera, sourceOf('file', 'clip.mp4')], {
    pathTemplate: join(dir, '{source}.mp4'),
    ffmpegPath,
    crf: 30,
    preset: 'ultrafast',
    segmentSeconds: 1,
    retention,
    ...(nowMs !== undefined ? { nowMs } : {}),
  });
const listing = () => readdirSync(dir).sort();

describe('segmented live recording through real ffmpeg', () => {
  it('writes one playable MP4 per second of frame time, frames adding up', async () => {
    const sink = open();
    let written = await feed(sink, 0.4, 2.5); // windows [0.4, 1) [1, 2) [2, 3) [3, 3.9]
    // Closed segments are final while the run goes on: a crash now would lose only the open one.
    await vi.waitFor(() => expect(listing()).toEqual(['cam.20261127T073500Z.mp4', 'cam.20261127T073501Z.mp4', 'cam.20261127T073502Z.mp4.partial']));
    expect(ffprobeFrameCount(join(dir, 'cam.20261127T073500Z.mp4'))).toBe(6);
    written += await feed(sink, 2.6, 3.9);
    expect(await sink.close()).toBe(`${join(dir, 'cam.*.mp4')} (4 segments)`);
    const names = ['cam.20261127T073500Z.mp4', 'cam.20261127T073501Z.mp4', 'cam.20261127T073502Z.mp4', 'cam.20261127T073503Z.mp4'];
    expect(listing()).toEqual(names);
    const counts = names.map((n) => ffprobeFrameCount(join(dir, n)));
    expect(counts).toEqual([6, 10, 10, 10]);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(written);
  });

  it('a later run: retention (age, injected clock) deletes the oldest segments, earlier runs included, and keeps the newest', async () => {
    writeFileSync(join(dir, 'cam.notes.txt'), 'not a segment');
    // Ends: 07:35:01, :02, :03, :04 (earlier run), then :11 and :12 (this run). At 07:35:12.5 with 10 s, the cut-off is 07:35:02.5.
    const sink = open({ maxAgeSeconds: 10, maxTotalBytes: null }, () => T0 + 12_500);
    await feed(sink, 10, 11.9);
    expect(await sink.close()).toBe(`${join(dir, 'cam.*.mp4')} (2 segments; retention deleted 2)`);
    expect(listing()).toEqual(['cam.20261127T073502Z.mp4', 'cam.20261127T073503Z.mp4', 'cam.20261127T073510Z.mp4', 'cam.20261127T073511Z.mp4', 'cam.notes.txt']);
    expect(ffprobeFrameCount(join(dir, 'cam.20261127T073511Z.mp4'))).toBe(10);
  });

  it('retention by bytes deletes the oldest while the segments take more than the limit, keeping the newest', async () => {
    const sizeBytes = new Map(listing().map((n) => [n, statSync(join(dir, n)).size]));
    sizeBytes.delete('cam.notes.txt');
    const meanBytes = [...sizeBytes.values()].reduce((a, b) => a + b, 0) / sizeBytes.size;
    const limitBytes = Math.round(meanBytes * 3.5); // about three of the six segments there will be
    const sink = open({ maxAgeSeconds: null, maxTotalBytes: limitBytes });
    await feed(sink, 20, 21.9);
    expect(await sink.close()).toMatch(/\(2 segments; retention deleted [1-5]\)$/);
    for (const n of ['cam.20261127T073520Z.mp4', 'cam.20261127T073521Z.mp4']) sizeBytes.set(n, statSync(join(dir, n)).size);
    const all = [...sizeBytes.keys()].sort();
    const kept = listing().filter((n) => n !== 'cam.notes.txt');
    // What is kept is the newest run of segments that fits; one more (the newest deleted) would not.
    expect(kept).toEqual(all.slice(all.length - kept.length));
    expect(kept.length).toBeGreaterThanOrEqual(2);
    const keptBytes = kept.reduce((sum, n) => sum + (sizeBytes.get(n) ?? 0), 0);
    expect(keptBytes).toBeLessThanOrEqual(limitBytes);
    expect(keptBytes + (sizeBytes.get(all[all.length - kept.length - 1] ?? '') ?? 0)).toBeGreaterThan(limitBytes);
    for (const n of kept) expect(ffprobeFrameCount(join(dir, n))).toBeGreaterThan(0);
  });

  it('a file source stays one output whatever its timestamps span', async () => {
    const sink = open();
    await feed(sink, 0, 2.4, 'clip.mp4', 0); // media time, 3 "windows"
    expect(await sink.close()).toBe(join(dir, 'clip.mp4'));
    expect(ffprobeFrameCount(join(dir, 'clip.mp4'))).toBe(25);
    rmSync(join(dir, 'clip.mp4'));
  });

  it('abort keeps the closed segments finalised and the open one as a playable .partial', async () => {
    for (const n of listing()) rmSync(join(dir, n));
    const sink = open();
    await feed(sink, 30, 31.4);
    expect(await sink.abort()).toBe(`${join(dir, 'cam.*.mp4')} (1 segment), ${join(dir, 'cam.20261127T073531Z.mp4.partial')}`);
    expect(listing()).toEqual(['cam.20261127T073530Z.mp4', 'cam.20261127T073531Z.mp4.partial']);
    expect(ffprobeFrameCount(join(dir, 'cam.20261127T073530Z.mp4'))).toBe(10);
    expect(ffprobeFrameCount(join(dir, 'cam.20261127T073531Z.mp4.partial'))).toBe(5);
  });
});
