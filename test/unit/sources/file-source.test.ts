import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSource } from '../../../src/sources/file-source.js';
import { HAS_SHARED, SKIP_SHARED_REASON, VTEST } from '../../helpers/shared.js';

/** FileSource's frame count and framesRead, on real (tiny, generated) files: what a file that ends early is judged by. */

const dir = mkdtempSync(join(tmpdir(), 'visionpipe-filesrc-'));
const full = join(dir, 'full.mp4');
const truncated = join(dir, 'truncated.mp4');
const editList = join(dir, 'cut-copy.mp4');
const offsetMkv = join(dir, 'offset.mkv');

function ffmpeg(...args: string[]): void {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')} failed: ${r.stderr}`);
}

const X264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'];

beforeAll(() => {
  // moov first (+faststart): with its tail cut off the file still opens and still declares all 50 frames.
  ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=25', '-frames:v', '50', ...X264, '-movflags', '+faststart', full);
  writeFileSync(truncated, readFileSync(full).subarray(0, Math.floor(statSync(full).size * 0.6)));
  // A stream-copied cut starting between keyframes: an edit list hides the frames before the cut point.
  const gop = join(dir, 'gop.mp4');
  ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=25', '-frames:v', '100', ...X264, '-g', '50', gop);
  ffmpeg('-ss', '1.3', '-i', gop, '-c', 'copy', editList);
  // Matroska has no frame count; OpenCV estimates duration × fps, and a timestamp offset inflates the duration.
  ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=25', '-frames:v', '37', ...X264, '-output_ts_offset', '10', offsetMkv);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function readToEnd(source: FileSource): Promise<number> {
  let frames = 0;
  for (let f = await source.read(); f !== null; f = await source.read()) {
    frames++;
    f.mat.release();
  }
  await source.close();
  return frames;
}

describe('FileSource frame counts', () => {
  it('reads a complete file to its declared frame count', async () => {
    const source = await FileSource.open(full);
    expect(source.info.frameCount).toBe(50);
    expect(source.framesRead).toBe(0);
    expect(await readToEnd(source)).toBe(50);
    expect(source.framesRead).toBe(50);
  });

  it('reads a file whose tail was cut off partially: framesRead stays below frameCount', async () => {
    const source = await FileSource.open(truncated);
    const frames = await readToEnd(source);
    expect(source.info.frameCount).toBe(50);
    expect(source.framesRead).toBe(frames);
    expect(frames).toBeGreaterThan(0);
    expect(frames).toBeLessThan(50);
  });

  it.each([
    // nb_frames 75 declared, 67 decoded: the count includes samples the edit list skips.
    { name: 'an mp4 with an edit list', path: editList },
    // OpenCV says 287 for 37 frames (round(11.48 s × 25)).
    { name: 'an mkv with a timestamp offset', path: offsetMkv },
  ])('gives no frame count for $name, whose count decoding never reaches (no false "truncated")', async ({ path }) => {
    const source = await FileSource.open(path);
    expect(source.info.frameCount).toBeNull();
    expect(await readToEnd(source)).toBeGreaterThan(0);
  });

  it.skipIf(!HAS_SHARED)(`keeps vtest.avi's declared 795 frames${HAS_SHARED ? '' : ` (skipped: ${SKIP_SHARED_REASON})`}`, async () => {
    const source = await FileSource.open(VTEST);
    expect(source.info.frameCount).toBe(795);
    await source.close();
  });
});
