import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ClipRecorder, type ClipSource } from '../../../src/clips/clip-recorder.js';
import { cv } from '../../../src/cv.js';
import { silentLogger } from '../../../src/log.js';
import { locateFfmpeg } from '../../../src/process/ffmpeg-path.js';
import { runningChildren } from '../../../src/process/children.js';
import type { ClipEventDraft, ClipTriggerType, ObjectEvent } from '../../../src/tracking/object-events.js';

// Real ffmpeg, synthetic frames: frame k shows k in two flat halves (k mod 16 and k div 16, 16 grey levels apart,
// far more than the encoder's error), so each decoded frame of a clip says which recorded frame it is and a clip's
// exact coverage can be checked.
const dir = mkdtempSync(join(tmpdir(), 'visionpipe-clips-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const W = 64;
const H = 48;
const SETTINGS = { preSeconds: 1, postSeconds: 1, maxSeconds: 10, maxFps: 10, crf: 18, preset: 'ultrafast', maxFiles: 100 };
const levelOf = (digit: number) => digit * 16 + 8;

function recorder(name: string, source: Partial<ClipSource> = {}, extra: { ffmpegPath?: string; settings?: Partial<typeof SETTINGS>; nowMs?: () => number; stuckMs?: number } = {}) {
  const drafts: ClipEventDraft[] = [];
  const triggers = new Set<ClipTriggerType>(['line.cross', 'zone.enter', 'zone.dwell']);
  const clips = new ClipRecorder({
    dir: join(dir, name),
    ffmpegPath: extra.ffmpegPath ?? locateFfmpeg().path,
    runId: 'run',
    settings: { ...SETTINGS, ...extra.settings },
    sources: [{ id: 'cam', kind: 'file', fps: 10, triggers, ...source }],
    onClip: (d) => drafts.push(d),
    log: silentLogger,
    ...(extra.nowMs === undefined ? {} : { nowMs: extra.nowMs }),
    ...(extra.stuckMs === undefined ? {} : { stuckMs: extra.stuckMs }),
  });
  return { clips, drafts, dir: join(dir, name) };
}

/** Writes frame k; `settle`: waits until it reached the encoder (a live write() never waits, by design). */
async function writeFrame(clips: ClipRecorder, k: number, timeMs = k * 100, settle = true): Promise<void> {
  const mat = new cv.Mat(H, W, cv.CV_8UC3, [levelOf(k % 16), levelOf(k % 16), levelOf(k % 16)]);
  const high = levelOf(Math.floor(k / 16));
  mat.getRegion(new cv.Rect(W / 2, 0, W / 2, H)).setTo(new cv.Vec3(high, high, high));
  try {
    await clips.write('cam', mat, timeMs);
    if (settle) await clips.settled('cam');
  } finally {
    mat.release();
  }
}

let ids = 0;
function event(type: ObjectEvent['type'], frameIndex: number, timestampMs = frameIndex * 100, sinceMs?: number): ObjectEvent {
  ids += 1;
  const base = { schemaVersion: 1, id: `e${ids}`, source: 'cam', trackId: 7, classId: 0, label: 'person', frameIndex, timestampMs, atMs: 0 };
  if (type === 'zone.dwell') return { ...base, type, zone: 'door', sinceMs: sinceMs ?? timestampMs, dwellMs: timestampMs - (sinceMs ?? timestampMs) } as unknown as ObjectEvent;
  if (type === 'line.cross') return { ...base, type, line: 'door', direction: 'in', sinceMs: sinceMs ?? timestampMs, counts: { in: 1, out: 0, byClass: {} } } as unknown as ObjectEvent;
  return { ...base, type, xyxy: [0, 0, 1, 1], score: 0.9 } as unknown as ObjectEvent;
}

/** The recorded frame numbers a clip shows, in order (from each decoded frame's grey level). */
function framesOf(path: string): number[] {
  const cap = new cv.VideoCapture(path);
  const out: number[] = [];
  try {
    for (let mat = cap.read(); !mat.empty; mat = cap.read()) {
      const digit = (x: number) => Math.round((mat.getRegion(new cv.Rect(x, 0, W / 2, H)).mean() as unknown as { x: number }).x / 16 - 0.5);
      out.push(digit(0) + 16 * digit(W / 2));
      mat.release();
    }
  } finally {
    cap.release();
  }
  return out;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('ClipRecorder (real ffmpeg)', () => {
  it('cuts the whole segments around an event: from its moment minus the pre-roll to its frame plus the post-roll', async () => {
    const { clips, drafts } = recorder('window');
    let path: string | null = null;
    for (let k = 0; k < 60; k++) {
      // Decided at frame 32; the line was crossed at frame 25 (the hysteresis confirmed it later).
      if (k === 32) path = clips.request(event('line.cross', 32, 3200, 2500));
      await writeFrame(clips, k);
    }
    // Ready before the end: once the segment holding 3200 + 1000 ms was closed (the cut runs in the background).
    await vi.waitFor(() => expect(drafts.map((d) => d.type)).toEqual(['clip.ready']), { timeout: 30_000, interval: 20 });
    await clips.finish();
    expect(path).toMatch(/cam[/\\]run-c1-t7\.mp4$/);
    const ready = drafts[0];
    if (ready?.type !== 'clip.ready') throw new Error('no clip.ready');
    expect(ready).toMatchObject({ clip: path, forEventType: 'line.cross', trackId: 7, fromMs: 1000, toMs: 4900 });
    expect(ready.sizeBytes).toBeGreaterThan(0);
    // 2500 − 1000 = 1500 → the segment from 1000; 3200 + 1000 = 4200 → the segment to 4900: frames 10..49, no gaps.
    expect(framesOf(path ?? '')).toEqual(range(10, 49));
  });

  it('events close in time share one clip, each announced; a later one gets its own', async () => {
    const { clips, drafts } = recorder('merge');
    const paths: (string | null)[] = [];
    for (let k = 0; k < 80; k++) {
      if (k === 20 || k === 24 || k === 60) paths.push(clips.request(event('zone.enter', k)));
      await writeFrame(clips, k);
    }
    await clips.finish();
    expect(paths[0]).toBe(paths[1]);
    expect(paths[2]).not.toBe(paths[0]);
    expect(drafts.map((d) => [d.type, d.forEventType, d.clip])).toEqual([
      ['clip.ready', 'zone.enter', paths[0]],
      ['clip.ready', 'zone.enter', paths[0]],
      ['clip.ready', 'zone.enter', paths[2]],
    ]);
    expect(framesOf(paths[0] ?? '')).toEqual(range(10, 39));
    expect(framesOf(paths[2] ?? '')).toEqual(range(50, 79));
  });

  it('an event near the end is cut with what was recorded when the source ends; types not asked for get none', async () => {
    const { clips, drafts } = recorder('end');
    let path: string | null = null;
    for (let k = 0; k < 25; k++) {
      if (k === 22) {
        expect(clips.request(event('object.start', 22))).toBeNull();
        path = clips.request(event('line.cross', 22));
      }
      await writeFrame(clips, k);
    }
    expect(drafts).toEqual([]);
    await clips.endSource('cam');
    expect(drafts.map((d) => d.type)).toEqual(['clip.ready']);
    expect(framesOf(path ?? '')).toEqual(range(10, 24));
    await clips.finish();
    // The rolling buffer is gone; only the clip stays.
    expect(readdirSync(join(dir, 'end', '.buffer'))).toEqual([]);
    expect(existsSync(path ?? '')).toBe(true);
  });

  it('a live source is recorded at a constant rate: a frame repeats until the next one, and a long gap is jumped', async () => {
    const { clips, drafts } = recorder('live', { kind: 'live', fps: 25 });
    const t0 = 1_700_000_000_000;
    let path: string | null = null;
    // 4 frames a second (the model's pace) for 3 s, a 10 s outage, then 3 s more.
    const times = [...range(0, 11).map((i) => t0 + i * 250), ...range(0, 11).map((i) => t0 + 13_000 + i * 250)];
    for (const [k, t] of times.entries()) {
      if (k === 13) path = clips.request(event('line.cross', k, t));
      await writeFrame(clips, k, t);
    }
    await clips.finish();
    // Recorded at min(25, maxFps 10) fps: frame k takes the slot nearest its time (250 ms apart, 2.5 slots) and is
    // shown until the next one's slot (3 or 2 times). The outage ends the recording: a new one starts at frame 12,
    // so no segment spans the gap. The event (frame 13, ±1 s) needs the new recording's first two segments.
    const shown = framesOf(path ?? '');
    expect(shown).toEqual([12, 12, 12, 13, 13, 14, 14, 14, 15, 15, 16, 16, 16, 17, 17, 18, 18, 18, 19, 19]);
    expect(drafts[0]).toMatchObject({ type: 'clip.ready', fromMs: t0 + 13_000, toMs: t0 + 14_900 });
  });

  it('a camera that stalls: its waiting clip is cut on its deadline with everything recorded up to the stall, the event\'s own frame included', async () => {
    let now = 1_000_000;
    const { clips, drafts } = recorder('stall', { kind: 'live', fps: 10 }, { nowMs: () => now });
    const t0 = 1_700_000_000_000;
    let path: string | null = null;
    for (let k = 0; k < 26; k++) {
      if (k === 25) path = clips.request(event('line.cross', k, t0 + k * 100));
      await writeFrame(clips, k, t0 + k * 100);
    }
    // No frame comes after 2500 ms: the post-roll never arrives. Past the deadline (post-roll + a segment + 10 s):
    now += 13_000;
    await vi.waitFor(() => expect(drafts).toHaveLength(1), { timeout: 30_000, interval: 50 });
    expect(drafts[0]).toMatchObject({ type: 'clip.ready', clip: path, toMs: t0 + 2500 });
    // 2500 − 1000 → from the segment at 1000 ms; to frame 25 (in the segment that was still open at the stall).
    expect(framesOf(path ?? '')).toEqual(range(10, 25));
    await clips.finish();
  });

  it('a hung encoder never holds a live camera\'s frames: they are left out of the recording, and the encoder is killed at its bound', async () => {
    const hung = join(dir, 'hung-ffmpeg.sh');
    writeFileSync(hung, '#!/bin/sh\nexec sleep 600\n', { mode: 0o755 }); // takes no input, never exits
    const { clips, drafts } = recorder('hung', { kind: 'live', fps: 10 }, { ffmpegPath: hung, stuckMs: 1000 });
    const path = clips.request(event('line.cross', 0, 0));
    // 100 frames of 9 KiB: far beyond the pipe's 64 KiB. Each write resolves although the encoder takes nothing
    // (were one to wait for the pipe, this loop would never end and the test would time out).
    for (let k = 0; k < 100; k++) await writeFrame(clips, k, k * 100, false);
    await clips.finish();
    expect(drafts).toEqual([expect.objectContaining({ type: 'clip.failed', clip: path })]);
    expect(runningChildren()).toEqual([]);
  });

  it('a dwell\'s clip is around the frame that decided it, not the start of a long stay', async () => {
    const { clips, drafts } = recorder('dwell', {}, { settings: { maxSeconds: 5 } });
    let path: string | null = null;
    for (let k = 0; k < 60; k++) {
      if (k === 40) path = clips.request(event('zone.dwell', 40, 4000, 500)); // stayed since 0.5 s
      await writeFrame(clips, k);
    }
    await clips.finish();
    expect(drafts[0]).toMatchObject({ type: 'clip.ready', clip: path, fromMs: 3000, toMs: 5900 });
  });

  it('an encoder that cannot run stops the source\'s clips after three tries, and the waiting clip is reported failed', async () => {
    const { clips, drafts } = recorder('broken', {}, { ffmpegPath: '/bin/false' });
    const path = clips.request(event('line.cross', 0));
    // An encoder's death is seen when it exits: frames go on until the third restart has failed too.
    let k = 0;
    await vi.waitFor(
      async () => {
        await writeFrame(clips, k++);
        expect(clips.wants(event('line.cross', k))).toBe(false);
      },
      { timeout: 30_000, interval: 10 },
    );
    expect(clips.request(event('line.cross', k))).toBeNull();
    await clips.finish();
    expect(drafts).toEqual([expect.objectContaining({ type: 'clip.failed', clip: path, reason: expect.stringMatching(/no video/) })]);
    expect(runningChildren()).toEqual([]);
  });
});
