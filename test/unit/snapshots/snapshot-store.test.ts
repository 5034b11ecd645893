import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cv } from '../../../src/cv.js';
import { SnapshotStore } from '../../../src/snapshots/snapshot-store.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-snapstore-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const frame = (index: number) => ({ mat: new cv.Mat(48, 64, cv.CV_8UC3, [index, 100, 200]), index });
const subject = (trackId: number, score = 0.9) => ({ trackId, classId: 0, label: 'person', xyxy: [10, 10, 30, 40] as [number, number, number, number], score });

function store(name: string, extra: { maxFiles?: number; maxKept?: number; mode?: 'crop' | 'full' } = {}) {
  const { maxFiles = 100, maxKept, mode = 'crop' } = extra;
  return new SnapshotStore({ dir: join(dir, name), mode, quality: 80, marginFraction: 0.1, runId: 'run', maxFiles, ...(maxKept === undefined ? {} : { maxKept }) });
}

describe('SnapshotStore', () => {
  it('writes the kept best frame once, as a JPEG, in a folder named safely after the source', async () => {
    const s = store('safe', { mode: 'full' });
    const source = 'rtsp://admin:***@10.0.0.5:554/live/../../escaped';
    s.capture(source, subject(1), frame(3));
    const path = await s.save(source, 1);
    expect(path).toBe(join(dir, 'safe', 'rtsp_admin_10.0.0.5_554_live_.._.._escaped', 'run-t1-f3.jpg'));
    expect(await s.save(source, 1)).toBe(path);
    expect(readdirSync(join(dir, 'safe'))).toHaveLength(1);
    expect(await s.save(source, 2)).toBeNull(); // nothing captured for it
  });

  it('a better frame replaces the kept one only when it scores clearly higher', async () => {
    const s = store('best');
    s.capture('cam', subject(1, 0.6), frame(1));
    s.capture('cam', subject(1, 0.61), frame(2)); // not 0.02 better: kept frame 1
    expect(await s.save('cam', 1)).toMatch(/run-t1-f1\.jpg$/);
    s.capture('cam', subject(1, 0.9), frame(5));
    expect(await s.save('cam', 1)).toMatch(/run-t1-f5\.jpg$/);
  });

  it('a file deleted by the maxFiles bound is written again when its object is named again', async () => {
    const s = store('bounded', { maxFiles: 2 });
    s.capture('cam', subject(1), frame(1));
    const first = await s.save('cam', 1);
    for (const id of [2, 3]) {
      s.capture('cam', subject(id), frame(id));
      await s.save('cam', id);
    }
    expect(existsSync(first ?? '')).toBe(false); // the oldest of three, beyond maxFiles 2
    expect(await s.save('cam', 1)).toBe(first);
    expect(existsSync(first ?? '')).toBe(true);
  });

  it('keeps at most maxKept objects (objects that never end are dropped oldest first)', () => {
    const s = store('kept', { maxKept: 5 });
    for (let id = 1; id <= 50; id++) s.capture('cam', subject(id), frame(id));
    expect(s.keptCount).toBe(5);
    s.forget('cam', 50);
    expect(s.keptCount).toBe(4);
  });
});
