import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Mat } from '../../../src/cv.js';
import { setEventStamp, stampEvent } from '../../../src/pipeline/event-stamp.js';
import type { AnnotatedFrame } from '../../../src/pipeline/frame.js';
import { toEventJson } from '../../../src/pipeline/prediction-event.js';
import { JsonlSink } from '../../../src/sinks/jsonl-sink.js';

// The stamp is per process (a worker sets it once): this file runs in its own process (vitest's forks pool).
const timingsMs = { read: 0, preprocess: 0, queue: 0, infer: 0, postprocess: 0, track: 0, annotate: 0 };
const frame: AnnotatedFrame = {
  frame: { sourceId: 'cam', index: 0, timestampMs: 0, sizeWh: [4, 4], mat: {} as Mat, readAtMs: 0, readMs: 0 },
  prediction: { sourceId: 'cam', frameIndex: 0, timestampMs: 0, sizeWh: [4, 4], result: { task: 'detection', detections: [] }, latencyMs: 1, timingsMs },
};
const dir = mkdtempSync(join(tmpdir(), 'vp-stamp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('events name the worker that wrote them', () => {
  it('adds nothing until a stamp is set (plain `run`)', () => {
    const event = { type: 'source-state' };
    expect(stampEvent(event)).toBe(event);
    expect(toEventJson(frame.prediction)).not.toHaveProperty('worker');
  });

  it('once set, predictions and every other event written to the events file carry it', async () => {
    setEventStamp({ worker: 'w7' });
    expect(toEventJson(frame.prediction)).toMatchObject({ type: 'prediction', worker: 'w7' });
    const sink = new JsonlSink(join(dir, 'events.jsonl'));
    await sink.write(frame);
    sink.writeEvent({ type: 'source-state', state: 'live' });
    await sink.close();
    const lines = readFileSync(join(dir, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; worker?: string });
    expect(lines.map((l) => [l.type, l.worker])).toEqual([
      ['prediction', 'w7'],
      ['source-state', 'w7'],
    ]);
  });
});
