import { describe, expect, it } from 'vitest';
import { Histogram } from '../../../src/metrics/histogram.js';
import { RunStats, percentile } from '../../../src/metrics/run-stats.js';

/** A seeded generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PERCENTILES = [0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100];

describe('Histogram', () => {
  it.each([
    // Log-normal latencies around 20 ms with a heavy tail, uniform ones, and a spread over the whole range.
    { name: 'log-normal ms', draw: (r: () => number) => 20 * Math.exp(1.5 * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())) },
    { name: 'uniform 0.5–400 ms', draw: (r: () => number) => 0.5 + 399.5 * r() },
    { name: 'log-uniform 0.01 ms–10 min', draw: (r: () => number) => 0.01 * 6e7 ** r() },
  ])('percentiles of $name are within 1 % of the exact nearest-rank ones', ({ draw }) => {
    const r = random(42);
    const h = new Histogram();
    const values: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const v = draw(r);
      values.push(v);
      h.record(v);
    }
    const sorted = [...values].sort((a, b) => a - b);
    for (const p of PERCENTILES) {
      const exact = percentile(sorted, p);
      expect(Math.abs(h.percentile(p) - exact) / exact, `p${p}: ${h.percentile(p)} vs ${exact}`).toBeLessThanOrEqual(0.01 + 1e-12);
    }
    expect(h.count).toBe(values.length);
    expect(h.min).toBe(sorted[0]);
    expect(h.max).toBe(sorted.at(-1));
    expect(h.mean).toBeCloseTo(values.reduce((a, b) => a + b, 0) / values.length, 9);
  });

  it('keeps a fixed number of buckets whatever it records, out-of-range values included', () => {
    const h = new Histogram();
    const buckets = h.bucketCount;
    // 0.01 ms … 10 min at 1 %: log(6e7) / log(1.01 / 0.99) ≈ 896 log buckets, plus under- and overflow.
    expect(buckets).toBeGreaterThan(850);
    expect(buckets).toBeLessThan(1000);
    const r = random(7);
    for (let i = 0; i < 200_000; i++) h.record(r() < 0.01 ? 1e9 * r() : r() < 0.01 ? 1e-6 * r() : 1000 * r());
    expect(h.bucketCount).toBe(buckets);
    expect(h.count).toBe(200_000);
    // Beyond the tracked range: exact extremes, and an absolute error under `lowest` below it.
    h.reset();
    h.record(0);
    h.record(0.004);
    h.record(2e6);
    expect(h.percentile(0)).toBe(0);
    expect(h.percentile(50)).toBeLessThan(0.01);
    expect(h.percentile(100)).toBe(2e6);
  });

  it('is empty after reset (a new window) and ignores NaN', () => {
    const h = new Histogram();
    expect(h.summary()).toEqual({ count: 0, p50: 0, p95: 0, p99: 0, max: 0 });
    h.record(5);
    h.record(Number.NaN);
    expect(h.count).toBe(1);
    expect(h.percentile(50)).toBe(5);
    h.reset();
    expect(h.count).toBe(0);
    h.record(100);
    expect(h.summary()).toEqual({ count: 1, p50: 100, p95: 100, p99: 100, max: 100 });
  });

  it('rejects a range it cannot represent', () => {
    expect(() => new Histogram({ lowest: 0 })).toThrow(RangeError);
    expect(() => new Histogram({ lowest: 10, highest: 5 })).toThrow(RangeError);
    expect(() => new Histogram({ relativeError: 1 })).toThrow(RangeError);
  });
});

describe('RunStats', () => {
  const timings = { read: 1, preprocess: 2, queue: 0, infer: 10, postprocess: 1, track: 0, annotate: 1, write: 1 };

  it('reports latency percentiles from its histogram, and per-window percentiles on demand', () => {
    const stats = new RunStats(0);
    for (let i = 1; i <= 100; i++) stats.add(timings, i, 0);
    const first = stats.latencyWindow();
    for (let i = 0; i < 100; i++) stats.add(timings, 1000, 0);
    const second = stats.latencyWindow();
    const summary = stats.summary(1000, { drops: {}, ringWaits: 0, stoppedEarly: false, outputs: {}, engine: 'fake', sourceProblems: [] });
    expect(first.count).toBe(100);
    expect(Math.abs(first.p50 - 50) / 50).toBeLessThanOrEqual(0.01);
    expect(Math.abs(first.p99 - 99) / 99).toBeLessThanOrEqual(0.01);
    expect(second).toEqual({ count: 100, p50: 1000, p95: 1000, p99: 1000, max: 1000 });
    expect(summary.frames).toBe(200);
    expect(Math.abs(summary.latencyMs.p50 - 100) / 100).toBeLessThanOrEqual(0.01);
    expect(Math.abs(summary.latencyMs.p95 - 1000) / 1000).toBeLessThanOrEqual(0.01);
    expect(summary.latencyMs.max).toBe(1000);
    expect(summary.meanStageMs.infer).toBe(10);
  });
});
