import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPipeline, type ObjectEvent, type RunSummary } from '../../src/index.js';
import { HAS_SHARED, ROOT, SKIP_SHARED_REASON, VTEST } from '../helpers/shared.js';

interface Truth {
  frameCount: number;
  fps: number;
  line: { name: string; from: [number, number]; to: [number, number]; units: 'px'; anchor: 'bottom-center' };
  frameTolerance: number;
  crossings: { frame: number; direction: 'in' | 'out'; person: string }[];
  counts: { in: number; out: number };
}

/** Labelled by eye from extracted frames, no detector involved: see test/fixtures/vtest-line/README.md. */
const truth = JSON.parse(readFileSync(resolve(ROOT, 'test/fixtures/vtest-line/truth.json'), 'utf8')) as Truth;
/**
 * How far a counted crossing's frame may be from the labelled one: the labeller's ±2 frames (±4 for the hard cases)
 * plus the Kalman filter's lag behind the boxes (a frame or two at walking pace).
 */
const FRAME_TOLERANCE = 4;

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-vtest-line-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!HAS_SHARED)(`the default detector with tracking counts the hand-labelled line crossings of vtest.avi${HAS_SHARED ? '' : ` (skipped: ${SKIP_SHARED_REASON})`}`, () => {
  const crossings: Extract<ObjectEvent, { type: 'line.cross' }>[] = [];
  let summary: RunSummary | undefined;

  it('runs the whole clip', async () => {
    const pipeline = await createPipeline({
      source: { uri: VTEST, track: { classes: ['person'] }, lines: [truth.line] },
      model: 'centernet',
      output: { events: join(dir, 'events.jsonl'), frameEvents: false },
    });
    pipeline.objectEvents$.subscribe((e) => {
      if (e.type === 'line.cross') crossings.push(e);
    });
    summary = await pipeline.run();
    expect(summary.frames).toBe(truth.frameCount);
  }, 900_000);

  it(`counts ${truth.counts.in} in and ${truth.counts.out} out, as labelled`, () => {
    expect(summary?.lineCounts).toEqual([
      { source: 'vtest.avi', line: truth.line.name, in: truth.counts.in, out: truth.counts.out, byClass: { person: truth.counts } },
    ]);
    expect(crossings.at(-1)?.counts).toMatchObject(truth.counts);
  });

  it(`each crossing is a labelled one: same direction, within ${FRAME_TOLERANCE} frames`, () => {
    const msPerFrame = 1000 / truth.fps;
    const counted = crossings.map((c) => ({ frame: Math.round(c.sinceMs / msPerFrame), direction: c.direction }));
    const unmatched = [...truth.crossings];
    for (const c of counted) {
      const i = unmatched.findIndex((t) => t.direction === c.direction && Math.abs(t.frame - c.frame) <= FRAME_TOLERANCE);
      expect(i, `counted ${c.direction} at frame ${c.frame} matches no labelled crossing (${JSON.stringify(unmatched)})`).toBeGreaterThanOrEqual(0);
      unmatched.splice(i, 1);
    }
    expect(unmatched).toEqual([]);
  });
});
