import { describe, expect, it } from 'vitest';
import {
  parseSegmentFileName,
  segmentBaseOf,
  segmentPathOf,
  segmentPatternOf,
  utcStamp,
  windowEndMs,
  windowStartMs,
} from '../../../src/sinks/segment-name.js';

const T0 = Date.UTC(2026, 10, 27, 7, 35, 0); // 2026-11-27 07:35:00 UTC

describe('segment names', () => {
  it('puts the UTC start between stem and extension', () => {
    const base = segmentBaseOf('out/cam.mp4');
    expect(base).toEqual({ dir: 'out', stem: 'cam', ext: 'mp4' });
    expect(segmentPathOf(base, T0 + 999)).toBe('out/cam.20261127T073500Z.mp4');
    expect(segmentPatternOf(base)).toBe('out/cam.*.mp4');
    expect(utcStamp(Date.UTC(2027, 0, 2, 3, 4, 5, 678))).toBe('20270102T030405Z');
  });

  it('keeps dots of the stem and handles a path without extension', () => {
    expect(segmentPathOf(segmentBaseOf('/d/cam.front.jsonl'), T0)).toBe('/d/cam.front.20261127T073500Z.jsonl');
    expect(segmentPathOf(segmentBaseOf('/d/cam'), T0)).toBe('/d/cam.20261127T073500Z');
  });

  const base = segmentBaseOf('/out/cam.mp4');
  it.each([
    ['cam.20261127T073500Z.mp4', T0],
    ['cam.20261127T073501Z.mp4', T0 + 1000],
    ['cam.20261127T073500Z.mp4.partial', null],
    ['cam.20261127T073500Z.mkv', null],
    ['cam.mp4', null],
    ['cam2.20261127T073500Z.mp4', null],
    ['xcam.20261127T073500Z.mp4', null],
    ['cam.front.20261127T073500Z.mp4', null],
    ['cam.20261127T0735Z.mp4', null],
    ['cam.20261127T073500.mp4', null],
    ['cam.20261399T073500Z.mp4', null], // month 13: not a real time
    ['cam.20261127T246000Z.mp4', null],
    ['cam.20261127t073500z.mp4', null],
  ])('parses %s → %s', (name, expected) => {
    expect(parseSegmentFileName(base, name)).toBe(expected);
  });

  it('aligns windows to multiples of segmentSeconds since the epoch', () => {
    expect(windowStartMs(T0 + 299_999, 300)).toBe(T0);
    expect(windowEndMs(T0 + 299_999, 300)).toBe(T0 + 300_000);
    expect(windowEndMs(T0 + 300_000, 300)).toBe(T0 + 600_000);
    expect(windowStartMs(T0 + 1500, 1)).toBe(T0 + 1000);
  });
});
