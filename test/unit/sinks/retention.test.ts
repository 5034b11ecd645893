import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyRetention, segmentsToDelete, type SegmentOnDisk } from '../../../src/sinks/retention.js';
import { segmentBaseOf } from '../../../src/sinks/segment-name.js';

const T0 = Date.UTC(2026, 10, 27, 7, 35, 0);
const seg = (startSeconds: number, sizeBytes = 100): SegmentOnDisk => ({ path: `s${startSeconds}`, segmentPath: `s${startSeconds}`, startMs: T0 + startSeconds * 1000, sizeBytes });
const names = (list: SegmentOnDisk[]) => list.map((s) => s.path);

describe('segmentsToDelete', () => {
  const segments = [seg(20), seg(0), seg(10), seg(30)]; // any order: sorted by start
  const clock = { nowMs: T0 + 40_000, segmentSeconds: 10 };

  it.each([
    ['no limits', { maxAgeSeconds: null, maxTotalBytes: null }, []],
    // ends: 10, 20, 30, 40 s; cut-off 40 - 25 = 15 s
    ['age', { maxAgeSeconds: 25, maxTotalBytes: null }, ['s0']],
    ['age exactly at the end is kept', { maxAgeSeconds: 30, maxTotalBytes: null }, []],
    ['bytes, oldest first', { maxAgeSeconds: null, maxTotalBytes: 250 }, ['s0', 's10']],
    ['bytes at the limit', { maxAgeSeconds: null, maxTotalBytes: 400 }, []],
    ['both: bytes count what age kept', { maxAgeSeconds: 25, maxTotalBytes: 250 }, ['s0', 's10']],
    ['bytes never delete the newest', { maxAgeSeconds: null, maxTotalBytes: 1 }, ['s0', 's10', 's20']],
    ['age counts from the end of the window', { maxAgeSeconds: 1, maxTotalBytes: null }, ['s0', 's10', 's20']],
  ])('%s', (_name, limits, expected) => {
    expect(names(segmentsToDelete(segments, limits, clock))).toEqual(expected);
  });

  it('deletes even the newest segment once it is too old', () => {
    expect(names(segmentsToDelete(segments, { maxAgeSeconds: 1, maxTotalBytes: null }, { ...clock, nowMs: T0 + 41_001 }))).toEqual(['s0', 's10', 's20', 's30']);
  });

  it("ends a segment at the next one's start when that is before its window end (a run that stopped)", () => {
    // s0 covers [0, 10) but the next run started at 3 s: s0 ended by then
    const list = [seg(0), seg(3), seg(10)];
    expect(names(segmentsToDelete(list, { maxAgeSeconds: 5, maxTotalBytes: null }, { nowMs: T0 + 9000, segmentSeconds: 10 }))).toEqual(['s0']);
  });
});

describe('applyRetention', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("deletes only this output's segments, earlier runs' included (a crashed run's .partial too), never other files", () => {
    dir = mkdtempSync(join(tmpdir(), 'vp-retention-'));
    const keepers = [
      'cam.mp4',
      'cam.20261127T073500Z.mkv',
      'cam.20261127T073500Z.jsonl',
      'cam2.20261127T073500Z.mp4',
      'other.20261127T073500Z.mp4',
      'cam.2026-11-27T07:35:00Z.mp4',
      'cam.20261127T073500Z.mp4.bak',
      'notes.txt',
    ];
    for (const name of keepers) writeFileSync(join(dir, name), Buffer.alloc(1000));
    mkdirSync(join(dir, 'cam.20261127T073400Z.mp4')); // a directory with a segment's name
    // earlier runs' segments (1000 bytes each) and this run's newest
    for (const stamp of ['073500Z', '073501Z', '073502Z', '073503Z']) writeFileSync(join(dir, `cam.20261127T${stamp}.mp4`), Buffer.alloc(1000));
    // what a run killed with -9 leaves: its open segment, never finalised
    writeFileSync(join(dir, 'cam.20261127T073459Z.mp4.partial'), Buffer.alloc(1000));
    return applyRetention(segmentBaseOf(join(dir, 'cam.mp4')), { maxAgeSeconds: null, maxTotalBytes: 2500 }, { nowMs: T0, segmentSeconds: 1 }).then((deleted) => {
      expect(deleted.map((p) => p.slice(dir.length + 1))).toEqual(['cam.20261127T073459Z.mp4.partial', 'cam.20261127T073500Z.mp4', 'cam.20261127T073501Z.mp4']);
      expect(readdirSync(dir).sort()).toEqual([...keepers, 'cam.20261127T073400Z.mp4', 'cam.20261127T073502Z.mp4', 'cam.20261127T073503Z.mp4'].sort());
    });
  });

  it('keeps what it is told to keep, and does nothing without limits', async () => {
    dir = mkdtempSync(join(tmpdir(), 'vp-retention-'));
    const old = join(dir, 'cam.20261127T073500Z.mp4');
    writeFileSync(old, 'x');
    const base = segmentBaseOf(join(dir, 'cam.mp4'));
    const farLater = { nowMs: T0 + 86_400_000, segmentSeconds: 1 };
    expect(await applyRetention(base, { maxAgeSeconds: null, maxTotalBytes: null }, farLater)).toEqual([]);
    expect(await applyRetention(base, { maxAgeSeconds: 1, maxTotalBytes: null }, { ...farLater, keep: new Set([old]) })).toEqual([]);
    expect(await applyRetention(base, { maxAgeSeconds: 1, maxTotalBytes: null }, farLater)).toEqual([old]);
  });

  it('copes with a missing directory', async () => {
    dir = mkdtempSync(join(tmpdir(), 'vp-retention-'));
    expect(await applyRetention(segmentBaseOf(join(dir, 'nope', 'cam.mp4')), { maxAgeSeconds: 1, maxTotalBytes: 1 }, { nowMs: T0, segmentSeconds: 1 })).toEqual([]);
  });
});
