import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Mat } from '../../../src/cv.js';
import { ConfigSchema } from '../../../src/config/schema.js';
import { silentLogger } from '../../../src/log.js';
import { noDrops, type FrameSource } from '../../../src/sources/frame-source.js';
import { openSinks } from '../../../src/sinks/open-sinks.js';

const T0 = Date.UTC(2026, 10, 27, 7, 35, 0);
const source = (kind: 'live' | 'file', id: string): FrameSource => ({
  info: { kind, id, sizeWh: [4, 4], fps: 10, frameCount: null },
  drops: noDrops(),
  read: async () => null,
  close: async () => undefined,
});
const timingsMs = { read: 0, preprocess: 0, queue: 0, infer: 0, postprocess: 0, track: 0, annotate: 0 };
const frame = (sourceId: string, timestampMs: number) => ({
  frame: { sourceId, index: 0, timestampMs, sizeWh: [4, 4] as [number, number], mat: {} as Mat, readAtMs: 0, readMs: 0 },
  prediction: { sourceId, frameIndex: 0, timestampMs, sizeWh: [4, 4] as [number, number], result: { task: 'detection' as const, detections: [] }, latencyMs: 0, timingsMs },
});

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('openSinks: segments', () => {
  it.each([
    ['a live source', [source('live', 'cam')], { segmentSeconds: 1 }, ['all.20261127T073500Z.jsonl', 'all.20261127T073501Z.jsonl']],
    ['live and file sources', [source('live', 'cam'), source('file', 'clip')], { segmentSeconds: 1 }, ['all.20261127T073500Z.jsonl', 'all.20261127T073501Z.jsonl']],
    ['segmentSeconds null', [source('live', 'cam')], { segmentSeconds: null }, ['all.jsonl']],
    ['file sources only', [source('file', 'clip')], { segmentSeconds: 1 }, ['all.jsonl']],
  ])('events file with %s', async (_name, sources, output, expected) => {
    dir = mkdtempSync(join(tmpdir(), 'vp-open-sinks-'));
    const config = ConfigSchema.parse({ source: { uri: 'x.mp4' }, output });
    const [sink, ...rest] = openSinks(config, sources, { videoPath: null, eventsPath: join(dir, 'all.jsonl'), ffmpegPath: null, snapshotsDir: null, clipsDir: null }, silentLogger);
    expect(rest).toEqual([]);
    const id = sources[0]?.info.id ?? '';
    await sink?.write(frame(id, T0 + 100));
    await sink?.write(frame(id, T0 + 1100));
    await sink?.close();
    expect(readdirSync(dir).sort()).toEqual(expected);
  });
});
