import { describe, expect, it } from 'vitest';
import { softmax, topK } from '../../../src/postprocess/classify.js';
import { decodeXyxyScoreClass, iou, nms } from '../../../src/postprocess/detect.js';
import { planResize } from '../../../src/preprocess/letterbox-geometry.js';

describe('classification', () => {
  it('softmax sums to 1 and keeps order, even for large logits', () => {
    const p = softmax([1000, 1001, 999]);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(p[1]).toBeGreaterThan(p[0] ?? 1);
  });

  it('topK returns the best k with labels', () => {
    expect(topK([0.1, 0.7, 0.2], 2, ['a', 'b', 'c'])).toEqual([
      { classId: 1, label: 'b', score: 0.7 },
      { classId: 2, label: 'c', score: 0.2 },
    ]);
  });
});

describe('detection', () => {
  it('iou of identical, disjoint and half-overlapping boxes', () => {
    expect(iou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(iou([0, 0, 10, 10], [20, 20, 30, 30])).toBe(0);
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(1 / 3, 6);
  });

  it('nms suppresses overlaps within a class only, best score first', () => {
    const boxes = [
      { classId: 0, score: 0.6, xyxy: [0, 0, 10, 10] },
      { classId: 0, score: 0.9, xyxy: [1, 1, 11, 11] },
      { classId: 1, score: 0.5, xyxy: [1, 1, 11, 11] },
    ];
    expect(nms(boxes, 0.5, 10).map((b) => b.score)).toEqual([0.9, 0.5]);
    expect(nms(boxes, 0.5, 1)).toHaveLength(1);
  });

  it('decodes rows of x1 y1 x2 y2 score class into frame pixels, dropping low scores', () => {
    const t = planResize('stretch', [1024, 512], [512, 512]);
    const data = Float32Array.from([10, 20, 110, 220, 0.9, 0, 0, 0, 5, 5, 0.1, 3]);
    expect(decodeXyxyScoreClass(data, t, [1024, 512], ['person'], { minScore: 0.3, iouThreshold: 0.5, maxDetections: 10 })).toEqual([
      { classId: 0, label: 'person', score: expect.closeTo(0.9, 5), xyxy: [20, 20, 220, 220] },
    ]);
  });
});
