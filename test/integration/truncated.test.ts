import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ffprobeFrameCount, runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-truncated-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const full = join(dir, 'full.mp4');
const cut = join(dir, 'cut.mp4');
// The index first (+faststart), then the tail cut off: the file opens and still declares all 50 frames.
spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=25', '-frames:v', '50', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', full]);
writeFileSync(cut, readFileSync(full).subarray(0, Math.floor(statSync(full).size * 0.6)));

const eventsOf = (path: string) =>
  readFileSync(path, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; framesRead?: number; framesDeclared?: number });

describe('files that end early say so', () => {
  it.each(['opencv', 'ffmpeg'])('decoder %s: VP_SOURCE_TRUNCATED naming M of N frames, exit 1, the summary, a source-end event, outputs finalised', (decoder) => {
    const config = join(dir, `${decoder}.yaml`);
    writeFileSync(config, `source:\n  uri: placeholder\n  decoder: ${decoder}\n`);
    const video = join(dir, `${decoder}.mp4`);
    const events = join(dir, `${decoder}.jsonl`);
    const r = runCli(['run', cut, '-c', config, '-o', video, '-e', events, '--quiet']);
    expect(r.code).toBe(1);
    const m = /VP_SOURCE_TRUNCATED: cut\.mp4 ended after (\d+) of the 50 frames its container declares/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const read = Number(m?.[1]);
    expect(read).toBeGreaterThan(0);
    expect(read).toBeLessThan(50);
    expect(r.stderr).toContain(`Outputs finalised: ${video}, ${events}`);
    expect(r.stdout).toMatch(new RegExp(`${read} frames in`));
    expect(r.stdout).toContain('source        cut.mp4: ended after');
    const lines = eventsOf(events);
    expect(lines.filter((l) => l.type === 'prediction')).toHaveLength(read);
    expect(lines.at(-1)).toMatchObject({ type: 'source-end', framesRead: read, framesDeclared: 50 });
    expect(ffprobeFrameCount(video)).toBe(read);
    expect(existsSync(`${video}.partial`)).toBe(false);
  });

  it('source.allowTruncated accepts it: exit 0, the event still written', () => {
    const config = join(dir, 'allow.yaml');
    writeFileSync(config, 'source:\n  uri: placeholder\n  allowTruncated: true\n');
    const events = join(dir, 'allow.jsonl');
    const r = runCli(['run', cut, '-c', config, '-e', events, '--quiet']);
    expect(r.stderr).not.toMatch(/visionpipe: error/);
    expect(r.code).toBe(0);
    expect(eventsOf(events).at(-1)).toMatchObject({ type: 'source-end', framesDeclared: 50 });
  });

  it('a complete file ends normally', () => {
    const r = runCli(['run', full, '--quiet', '--max-frames', '50']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('source        ');
  });
});
