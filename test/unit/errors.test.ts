import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, VisionpipeError } from '../../src/errors.js';

describe('error catalogue', () => {
  it('README documents exactly the codes in src/errors.ts', () => {
    const readme = readFileSync('README.md', 'utf8');
    const documented = Object.fromEntries([...readme.matchAll(/^\| `(VP_[A-Z_]+)` \| (.+) \|$/gm)].map((m) => [m[1], m[2]]));
    expect(documented).toEqual(ERROR_CODES);
  });

  it('a message names what, the value, what was expected and what to do', () => {
    const e = new VisionpipeError('VP_SOURCE_NOT_FOUND', 'The input video does not exist', { value: 'x.mp4', expected: 'a file' });
    expect(e.message).toBe(`The input video does not exist; got "x.mp4"; expected a file.\n  → ${ERROR_CODES.VP_SOURCE_NOT_FOUND}`);
    expect(e.code).toBe('VP_SOURCE_NOT_FOUND');
  });
});
