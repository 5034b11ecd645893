import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_SHARED, ROOT, VTEST } from '../helpers/shared.js';

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-cv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('OpenCV in one process', () => {
  it('survives a whole clip of decoded and resized frames (GC re-entry through the addon’s Mat allocator, see src/cv.ts)', () => {
    // vtest.avi reproduced the abort every time without the fix; a synthetic clip did not.
    let clip = VTEST;
    if (!HAS_SHARED) {
      clip = join(dir, 'clip.mp4');
      spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=768x576:rate=10', '-frames:v', '795', '-pix_fmt', 'yuv420p', clip]);
    }
    const script = `
      import { cv } from ${JSON.stringify(`${ROOT}/src/cv.ts`)};
      const cap = new cv.VideoCapture(${JSON.stringify(clip)});
      let n = 0;
      for (;;) {
        const f = await cap.readAsync();
        if (f.empty) break;
        n += (await f.resizeAsync(32, 32)).getData().length;
      }
      console.log('done', n);
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).not.toContain('Check failed');
    expect(r.stdout.trim()).toBe(`done ${795 * 32 * 32 * 3}`);
    expect(r.status).toBe(0);
  });
});
