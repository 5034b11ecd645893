import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ffprobeFrameCount, runCli } from '../helpers/cli.js';
import { createPipeline } from '../../src/pipeline/create-pipeline.js';
import type { Prediction } from '../../src/pipeline/frame.js';
import { HAS_SHARED, SKIP_SHARED_REASON, VTEST } from '../helpers/shared.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-multi-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const clip = (name: string, frames: number, pattern: string) => {
  const path = join(dir, name);
  spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `${pattern}=size=160x120:rate=10`, '-frames:v', String(frames), '-pix_fmt', 'yuv420p', path]);
  return path;
};
const a = clip('a.mp4', 6, 'testsrc');
const b = clip('b.mp4', 4, 'smptebars');

describe('several sources in one process share one inference worker', () => {
  it('processes every frame of each file, one MP4 per source and one events file for all', () => {
    const r = runCli(['run', a, b, '--output', join(dir, 'out-{source}.mp4'), '--events', join(dir, 'all.jsonl'), '--quiet']);
    expect(r.stderr).not.toMatch(/visionpipe: error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/10 frames/);
    expect(ffprobeFrameCount(join(dir, 'out-a.mp4'))).toBe(6);
    expect(ffprobeFrameCount(join(dir, 'out-b.mp4'))).toBe(4);
    const events = readFileSync(join(dir, 'all.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { source: string; frameIndex: number });
    const bySource = (s: string) => events.filter((e) => e.source === s).map((e) => e.frameIndex);
    expect(bySource('a.mp4')).toEqual([0, 1, 2, 3, 4, 5]);
    expect(bySource('b.mp4')).toEqual([0, 1, 2, 3]);
  });

  it('refuses one video path for several sources', () => {
    const r = runCli(['run', a, b, '--output', join(dir, 'one.mp4'), '--quiet']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('{source}');
    expect(existsSync(join(dir, 'one.mp4'))).toBe(false);
  });
});

/** Same structure, same strings, numbers within 0.01 (box pixels, scores). */
function expectClose(actual: unknown, expected: unknown, where: string): void {
  if (typeof expected === 'number') {
    expect(typeof actual, where).toBe('number');
    expect(Math.abs((actual as number) - expected), where).toBeLessThanOrEqual(0.01);
  } else if (Array.isArray(expected)) {
    expect(Array.isArray(actual) && actual.length, where).toBe(expected.length);
    expected.forEach((e, i) => expectClose((actual as unknown[])[i], e, `${where}[${i}]`));
  } else if (expected !== null && typeof expected === 'object') {
    expect(Object.keys(actual as object).sort(), where).toEqual(Object.keys(expected).sort());
    for (const [k, e] of Object.entries(expected)) expectClose((actual as Record<string, unknown>)[k], e, `${where}.${k}`);
  } else expect(actual, where).toEqual(expected);
}

/** Three 5-frame cuts of the shared sample (people walking) at different times: one per source. */
const people = HAS_SHARED
  ? [0, 20, 40].map((startS) => {
      const path = join(dir, `people-${startS}.mp4`);
      spawnSync('ffmpeg', ['-v', 'error', '-y', '-ss', String(startS), '-i', VTEST, '-frames:v', '5', '-pix_fmt', 'yuv420p', path]);
      return path;
    })
  : [];

describe.skipIf(!HAS_SHARED)(`frames of several sources in one inference call (pipeline.maxBatch)${HAS_SHARED ? '' : ` — skipped: ${SKIP_SHARED_REASON}`}`, () => {
  /** Every prediction of a run on the default detector, keyed by source and frame, with the run's summary. */
  async function predictions(maxBatch: number) {
    const pipeline = await createPipeline({
      source: people.map((uri) => ({ uri })),
      model: 'centernet',
      pipeline: { maxBatch, batchChoice: 'always' },
    });
    const seen = new Map<string, Prediction['result']>();
    pipeline.predictions$.subscribe((p) => seen.set(`${p.sourceId}#${p.frameIndex}`, p.result));
    const summary = await pipeline.run();
    return { seen, summary };
  }

  it('gives every source the detections it gets one frame at a time, routed back in order', async () => {
    const batched = await predictions(3);
    const alone = await predictions(1);
    expect(alone.summary.meanBatchSize).toBe(1);
    // Three files read at once: while the worker runs one batch, the next frames of the others wait for it.
    expect(batched.summary.meanBatchSize).toBeGreaterThan(1);
    expect(batched.summary.frames).toBe(15);
    expect([...batched.seen.keys()].sort()).toEqual([...alone.seen.keys()].sort());
    const round = (r: unknown) => JSON.parse(JSON.stringify(r), (_k, v: unknown) => (typeof v === 'number' ? Math.round(v * 100) / 100 : v)) as unknown;
    const detections = [...alone.seen.values()].reduce((n, r) => n + (r.task === 'detection' ? r.detections.length : 0), 0);
    expect(detections).toBeGreaterThan(20); // people in every frame: the comparison is not of empty lists
    for (const [key, result] of alone.seen) expect(round(batched.seen.get(key)), key).toEqual(round(result));
  }, 180_000);

  it('onnx.workers 2: frames spread over two inference workers come back in order with the same detections', async () => {
    const run = async (workers: number) => {
      const pipeline = await createPipeline({ source: { uri: people[1]! }, model: 'centernet', onnx: { workers } });
      const seen: Prediction[] = [];
      pipeline.predictions$.subscribe((p) => seen.push(p));
      await pipeline.run();
      return seen;
    };
    const two = await run(2);
    const one = await run(1);
    expect(two.map((p) => p.frameIndex)).toEqual([0, 1, 2, 3, 4]);
    // One onnxruntime thread instead of two may sum in another order: equal within 1/100 of a pixel / score.
    two.forEach((p, i) => expectClose(p.result, one[i]!.result, `frame ${i}`));
  }, 180_000);
});
