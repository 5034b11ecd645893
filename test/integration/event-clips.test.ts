import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cv, type Mat } from '../../src/cv.js';
import { createPipeline, type ObjectEvent } from '../../src/index.js';
import { runningChildren } from '../../src/process/children.js';
import { HAS_SHARED, ROOT, SKIP_SHARED_REASON, VTEST } from '../helpers/shared.js';

const truth = JSON.parse(readFileSync(resolve(ROOT, 'test/fixtures/vtest-line/truth.json'), 'utf8')) as { line: Record<string, unknown> };
const dir = mkdtempSync(join(tmpdir(), 'visionpipe-event-clips-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FRAMES = 100;
const FPS = 10;
const PRE_S = 2;
const POST_S = 0.5;

/** Frames of a video, downscaled to grey 96×72 (enough to tell frames apart, little memory). */
function smallFrames(path: string, max = Infinity): Mat[] {
  const cap = new cv.VideoCapture(path);
  const out: Mat[] = [];
  try {
    for (let m = cap.read(); !m.empty && out.length < max; m = cap.read()) {
      out.push(m.cvtColor(cv.COLOR_BGR2GRAY).resize(72, 96));
      m.release();
    }
  } finally {
    cap.release();
  }
  return out;
}

/** The index of the source frame a clip frame shows: the one it differs least from (annotations drawn on it). */
function sourceIndexOf(clipFrame: Mat, source: readonly Mat[]): number {
  let best = -1;
  let bestDiff = Infinity;
  source.forEach((s, i) => {
    const diff = clipFrame.absdiff(s).sum() as unknown as number;
    if (diff < bestDiff) [best, bestDiff] = [i, diff];
  });
  return best;
}

describe.skipIf(!HAS_SHARED)(`event clips on the real detector and vtest.avi${HAS_SHARED ? '' : ` (skipped: ${SKIP_SHARED_REASON})`}`, () => {
  it('a line crossing gets an MP4 that plays, shows the frames from the pre-roll to the post-roll, and is announced by clip.ready', async () => {
    const clipsDir = join(dir, 'clips');
    const pipeline = await createPipeline({
      source: { uri: VTEST, maxFrames: FRAMES, track: { classes: ['person'] }, lines: [truth.line] },
      model: 'centernet',
      output: { events: join(dir, 'events.jsonl'), frameEvents: false, clips: clipsDir, clip: { preSeconds: PRE_S, postSeconds: POST_S, events: ['line.cross'] } },
    });
    const events: ObjectEvent[] = [];
    pipeline.objectEvents$.subscribe((e) => events.push(e));
    const summary = await pipeline.run();
    expect(summary.frames).toBe(FRAMES);

    // The first labelled crossing (frame 88, out) is the one crossing in these 100 frames.
    const crossings = events.filter((e): e is Extract<ObjectEvent, { type: 'line.cross' }> => e.type === 'line.cross');
    expect(crossings).toHaveLength(1);
    const [cross] = crossings;
    if (cross === undefined) throw new Error('no crossing');
    expect(cross.clip).toMatch(/vtest[/\\][^/\\]+\.mp4$/);
    const ready = events.filter((e) => e.type === 'clip.ready');
    expect(ready).toEqual([expect.objectContaining({ type: 'clip.ready', forEventId: cross.id, forEventType: 'line.cross', clip: cross.clip, trackId: cross.trackId })]);
    // It came after the event it is for, with a later id, and the events file has both.
    expect(events.indexOf(ready[0] as ObjectEvent)).toBeGreaterThan(events.indexOf(cross));
    const lines = readFileSync(join(dir, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; clip?: string });
    expect(lines.filter((l) => l.clip === cross.clip).map((l) => l.type)).toEqual(['line.cross', 'clip.ready']);

    // The file itself, judged by its pixels against the source: its first frame is at or before the crossing's
    // moment minus the pre-roll (whole 1 s segments: at most a second earlier), its last is the last frame read.
    const clip = smallFrames(cross.clip ?? '');
    const source = smallFrames(VTEST, FRAMES);
    try {
      const momentFrame = Math.round((cross.sinceMs / 1000) * FPS);
      const firstShown = sourceIndexOf(clip[0] as Mat, source);
      const lastShown = sourceIndexOf(clip.at(-1) as Mat, source);
      expect(firstShown).toBeLessThanOrEqual(momentFrame - PRE_S * FPS);
      expect(firstShown).toBeGreaterThanOrEqual(momentFrame - (PRE_S + 1) * FPS);
      expect(firstShown % FPS).toBe(0); // a segment boundary
      expect(lastShown).toBe(FRAMES - 1); // the post-roll ran past the end: cut at the end
      // Every frame in between, once, in order: copied, not re-timed.
      expect(clip).toHaveLength(lastShown - firstShown + 1);
      const ready0 = ready[0] as Extract<ObjectEvent, { type: 'clip.ready' }>;
      expect(ready0.fromMs).toBe(firstShown * (1000 / FPS));
      expect(ready0.toMs).toBe(lastShown * (1000 / FPS));
    } finally {
      for (const m of [...clip, ...source]) m.release();
    }

    // The rolling buffer is removed; no encoder is left running.
    expect(readdirSync(join(clipsDir, '.buffer'))).toEqual([]);
    expect(existsSync(cross.clip ?? '')).toBe(true);
    expect(runningChildren()).toEqual([]);
    expect(summary.objectEvents).toMatchObject({ 'line.cross': 1, 'clip.ready': 1 });
    // The run's list of outputs names the clips folder.
    expect(summary.outputs['clips']).toBe(`${clipsDir} (1 clip)`);
  }, 300_000);
});
