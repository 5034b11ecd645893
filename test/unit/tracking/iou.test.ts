import { describe, expect, it } from 'vitest';
import { iou } from '../../../src/tracking/iou.js';
import type { Xyxy } from '../../../src/tracking/types.js';

describe('iou', () => {
  it.each<{ name: string; a: Xyxy; b: Xyxy; want: number }>([
    { name: 'identical', a: [0, 0, 10, 10], b: [0, 0, 10, 10], want: 1 },
    { name: 'half overlap', a: [0, 0, 10, 10], b: [5, 0, 15, 10], want: 1 / 3 },
    { name: 'contained', a: [0, 0, 10, 10], b: [2, 2, 7, 7], want: 25 / 100 },
    { name: 'disjoint', a: [0, 0, 10, 10], b: [20, 20, 30, 30], want: 0 },
    { name: 'touching edges', a: [0, 0, 10, 10], b: [10, 0, 20, 10], want: 0 },
    { name: 'zero width', a: [5, 0, 5, 10], b: [0, 0, 10, 10], want: 0 },
    { name: 'inverted', a: [10, 10, 0, 0], b: [0, 0, 10, 10], want: 0 },
    { name: 'both degenerate and equal', a: [1, 1, 1, 1], b: [1, 1, 1, 1], want: 0 },
    { name: 'NaN coordinate', a: [0, 0, NaN, 10], b: [0, 0, 10, 10], want: 0 },
    { name: 'infinite box', a: [0, 0, Infinity, 10], b: [0, 0, 10, 10], want: 0 },
  ])('$name', ({ a, b, want }) => {
    expect(iou(a, b)).toBeCloseTo(want, 12);
    expect(iou(b, a)).toBeCloseTo(want, 12);
  });
});
