import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { attemptPath, publishOutput, removeStaleAttempts } from '../../../src/cluster/atomic-output.js';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('atomic outputs of file jobs', () => {
  it('names an attempt in the same folder, hidden, keeping the extension, per job, attempt and worker', () => {
    dir = mkdtempSync(join(tmpdir(), 'vp-atomic-'));
    const final = join(dir, 'clip.mp4');
    expect(attemptPath(final, '12', 1, 'w1')).toBe(join(dir, '.clip.vpjob-12-1-w1.mp4'));
    expect(attemptPath(final, '12', 2, 'host:a/b')).toBe(join(dir, '.clip.vpjob-12-2-host_a_b.mp4'));
  });

  it('a retried job leaves exactly one complete output: stale attempts removed, the new one renamed over', () => {
    dir = mkdtempSync(join(tmpdir(), 'vp-atomic-'));
    const final = join(dir, 'clip.jsonl');
    // Attempt 1 (a worker killed mid-write) left a half file; job 3's own attempt and another job's are not touched.
    writeFileSync(`${attemptPath(final, '1', 1, 'w1')}.partial`, '{"half');
    writeFileSync(attemptPath(final, '13', 1, 'w2'), 'other job');
    const mine = attemptPath(final, '1', 2, 'w2');
    writeFileSync(`${mine}.partial`, 'being written');
    expect(removeStaleAttempts(final, '1', mine)).toEqual(['.clip.vpjob-1-1-w1.jsonl.partial']);
    writeFileSync(mine, 'complete\n');
    publishOutput(mine, final);
    // A duplicate completion (the first worker was only slow) renames its complete copy over: still one output.
    const late = attemptPath(final, '1', 1, 'w1');
    writeFileSync(late, 'complete\n');
    publishOutput(late, final);
    expect(readdirSync(dir).sort()).toEqual(['.clip.vpjob-1-2-w2.jsonl.partial', '.clip.vpjob-13-1-w2.jsonl', 'clip.jsonl'].sort());
  });
});
