import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ffprobeFrameCount, runCli } from '../helpers/cli.js';

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
