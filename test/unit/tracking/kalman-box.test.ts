import { describe, expect, it } from 'vitest';
import { KalmanBox } from '../../../src/tracking/kalman-box.js';
import type { Xyxy } from '../../../src/tracking/types.js';

const FRAME_MS = 1000 / 30;

/** A 40 × 100 box whose centre starts at (100, 200) and moves at (vx, vy) px/ms while its height grows at vh px/ms. */
function movingBox(tMs: number, vx = 0.09, vy = -0.06, vh = 0.003): Xyxy {
  const cx = 100 + vx * tMs;
  const cy = 200 + vy * tMs;
  const h = 100 + vh * tMs;
  return [cx - 20, cy - h / 2, cx + 20, cy + h / 2];
}

function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  return Math.max(...a.map((v, i) => Math.abs(v - (b[i] ?? NaN))));
}

describe('KalmanBox', () => {
  it('starts at the measured box, at rest', () => {
    const kf = new KalmanBox([10, 20, 50, 120]);
    expect(kf.xyxy).toEqual([10, 20, 50, 120]);
    expect(kf.state).toEqual([30, 70, 40, 100, 0, 0, 0, 0]);
  });

  it.each([
    { name: '30 fps', stepMs: FRAME_MS },
    { name: '10 fps (dropped frames)', stepMs: 3 * FRAME_MS },
  ])('predicts a box moving at constant velocity within a pixel after a few updates ($name)', ({ stepMs }) => {
    const kf = new KalmanBox(movingBox(0));
    let t = 0;
    for (let i = 0; i < 6; i++) {
      t += stepMs;
      kf.predict(stepMs);
      kf.update(movingBox(t));
    }
    t += stepMs;
    kf.predict(stepMs);
    expect(maxAbsDiff(kf.xyxy, movingBox(t))).toBeLessThan(1);
    // The velocity it learned (px/ms) is off by less than half a pixel per 30 fps frame.
    const [, , , , vx = NaN, vy = NaN] = kf.state;
    expect(Math.abs(vx - 0.09) * FRAME_MS).toBeLessThan(0.5);
    expect(Math.abs(vy + 0.06) * FRAME_MS).toBeLessThan(0.5);
  });

  it('predicting 2·dt once equals predicting dt twice for the mean, and nearly for the covariance', () => {
    const once = new KalmanBox(movingBox(0));
    const twice = new KalmanBox(movingBox(0));
    for (const kf of [once, twice]) {
      kf.predict(FRAME_MS);
      kf.update(movingBox(FRAME_MS));
      kf.predict(FRAME_MS);
      kf.update(movingBox(2 * FRAME_MS));
    }
    once.predict(2 * FRAME_MS);
    twice.predict(FRAME_MS);
    twice.predict(FRAME_MS);
    expect(maxAbsDiff(once.state, twice.state)).toBeLessThan(1e-9);
    // Process noise adds linearly in dt; only the cross term of one step's noise carried through the next differs.
    const a = once.covariance;
    const b = twice.covariance;
    for (let i = 0; i < 8; i++) {
      const va = a[i * 8 + i] ?? NaN;
      expect(Math.abs(va - (b[i * 8 + i] ?? NaN)) / va).toBeLessThan(0.05);
    }
  });

  it('grows uncertain while predicting and regains certainty on update', () => {
    const kf = new KalmanBox([0, 0, 40, 100]);
    const variance = (): number => kf.covariance[0] ?? NaN;
    const v0 = variance();
    kf.predict(FRAME_MS);
    const v1 = variance();
    kf.predict(10 * FRAME_MS);
    const v2 = variance();
    expect(v1).toBeGreaterThan(v0);
    expect(v2).toBeGreaterThan(v1);
    kf.update([0, 0, 40, 100]);
    expect(variance()).toBeLessThan(v1);
    const cov = kf.covariance;
    for (let i = 0; i < 8; i++) for (let j = 0; j < 8; j++) expect(cov[i * 8 + j]).toBe(cov[j * 8 + i]);
  });

  it('does not move on predict(0), and rejects negative or non-finite dt', () => {
    const kf = new KalmanBox(movingBox(0));
    kf.predict(FRAME_MS);
    kf.update(movingBox(FRAME_MS));
    const before = kf.state;
    kf.predict(0);
    expect(kf.state).toEqual(before);
    expect(() => kf.predict(-1)).toThrow(RangeError);
    expect(() => kf.predict(NaN)).toThrow(/dtMs is NaN/);
    expect(() => kf.predict(Infinity)).toThrow(RangeError);
  });

  it('holdSize stops the size from changing while the centre keeps moving', () => {
    const kf = new KalmanBox(movingBox(0, 0.09, 0, -0.2));
    for (let i = 1; i <= 5; i++) {
      kf.predict(FRAME_MS);
      kf.update(movingBox(i * FRAME_MS, 0.09, 0, -0.2));
    }
    const [cx0 = NaN, , w0 = NaN, h0 = NaN] = kf.state;
    kf.predict(1000, true);
    const [cx1 = NaN, , w1 = NaN, h1 = NaN, , , vw = NaN, vh = NaN] = kf.state;
    expect([w1, h1, vw, vh]).toEqual([w0, h0, 0, 0]);
    expect(cx1 - cx0).toBeGreaterThan(60);
  });

  it('clamps a size predicted below zero, keeping the box well-formed', () => {
    const kf = new KalmanBox(movingBox(0, 0, 0, -0.5));
    for (let i = 1; i <= 5; i++) {
      kf.predict(FRAME_MS);
      kf.update(movingBox(i * FRAME_MS, 0, 0, -0.5));
    }
    kf.predict(2000);
    const [x1, y1, x2, y2] = kf.xyxy;
    expect(x2).toBeGreaterThanOrEqual(x1);
    expect(y2).toBeGreaterThanOrEqual(y1);
  });
});
