import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Mat } from '../../../src/cv.js';
import type { AnnotatedFrame } from '../../../src/pipeline/frame.js';
import { JsonlSink } from '../../../src/sinks/jsonl-sink.js';

const T0 = Date.UTC(2026, 10, 27, 7, 35, 0);
const timingsMs = { read: 0, preprocess: 0, queue: 0, infer: 0, postprocess: 0, track: 0, annotate: 0 };

/** JsonlSink reads only the prediction: no pixels needed. */
function frame(sourceId: string, frameIndex: number, timestampMs: number): AnnotatedFrame {
  const sizeWh: [number, number] = [4, 4];
  return {
    frame: { sourceId, index: frameIndex, timestampMs, sizeWh, mat: {} as Mat, readAtMs: 0, readMs: 0 },
    prediction: { sourceId, frameIndex, timestampMs, sizeWh, result: { task: 'detection', detections: [] }, latencyMs: 1, timingsMs },
  };
}

const lines = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vp-jsonl-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('JsonlSink', () => {
  it('writes one file when not segmented', async () => {
    const sink = new JsonlSink(join(dir, 'all.jsonl'));
    await sink.write(frame('clip', 0, 0));
    sink.writeEvent({ type: 'source-state', atMs: T0, state: 'live' });
    expect(await sink.close()).toBe(join(dir, 'all.jsonl'));
    expect(lines(join(dir, 'all.jsonl')).map((l) => l['type'])).toEqual(['prediction', 'source-state']);
  });

  it("segments by each prediction's timestamp and each event's atMs; a file source's lines go by the clock", async () => {
    const nowMs = T0 + 1500; // where lines without a date of their own go
    const sink = new JsonlSink(join(dir, 'all.jsonl'), {
      segmentSeconds: 1,
      retention: { maxAgeSeconds: null, maxTotalBytes: null },
      liveSourceIds: new Set(['cam']),
      nowMs: () => nowMs,
    });
    sink.writeEvent({ type: 'source-state', source: 'cam', state: 'live', atMs: T0 + 200 });
    await sink.write(frame('cam', 0, T0 + 300));
    await sink.write(frame('cam', 1, T0 + 1100));
    await sink.write(frame('clip.mp4', 0, 40)); // media time: placed at nowMs, in the open segment
    sink.writeEvent({ type: 'source-state', source: 'cam', state: 'stalled', atMs: T0 + 2050 });
    await sink.write(frame('cam', 2, T0 + 2100));
    sink.writeEvent({ type: 'frame-error', source: 'cam' }); // no atMs: the clock, which is behind: stays in the open segment
    expect(await sink.close()).toBe(`${join(dir, 'all.*.jsonl')} (3 segments)`);
    sink.writeEvent({ type: 'source-state', state: 'stopped', atMs: T0 + 9000 }); // after close: dropped, no new file
    expect(readdirSync(dir).sort()).toEqual(['all.20261127T073500Z.jsonl', 'all.20261127T073501Z.jsonl', 'all.20261127T073502Z.jsonl']);
    const summary = (name: string) => lines(join(dir, name)).map((l) => `${String(l['source'])}:${String(l['state'] ?? l['frameIndex'] ?? l['type'])}`);
    expect(summary('all.20261127T073500Z.jsonl')).toEqual(['cam:live', 'cam:0']);
    expect(summary('all.20261127T073501Z.jsonl')).toEqual(['cam:1', 'clip.mp4:0']);
    expect(summary('all.20261127T073502Z.jsonl')).toEqual(['cam:stalled', 'cam:2', 'cam:frame-error']);
  });

  it('abort keeps closed segments and the open one as .partial', async () => {
    const sink = new JsonlSink(join(dir, 'all.jsonl'), {
      segmentSeconds: 1,
      retention: { maxAgeSeconds: null, maxTotalBytes: null },
      liveSourceIds: new Set(['cam']),
    });
    await sink.write(frame('cam', 0, T0));
    await sink.write(frame('cam', 1, T0 + 1000));
    expect(await sink.abort()).toBe(`${join(dir, 'all.*.jsonl')} (1 segment), ${join(dir, 'all.20261127T073501Z.jsonl.partial')}`);
    expect(readdirSync(dir).sort()).toEqual(['all.20261127T073500Z.jsonl', 'all.20261127T073501Z.jsonl.partial']);
  });
});
