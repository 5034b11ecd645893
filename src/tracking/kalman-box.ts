import { solveSymmetricPositive, symmetrize } from './matrix.js';
import type { Xyxy } from './types.js';

/** Tuning of {@link KalmanBox}. */
export interface KalmanBoxOptions {
  /**
   * The frame period the noise weights below are quoted for, in ms. Default 1000/30. Noise is per `frameMs` and
   * scaled by dt / frameMs, so the filter gives the same answer at any frame rate, including after dropped frames.
   */
  frameMs: number;
  /** Position noise std as a fraction of the box's width (x, w) or height (y, h), per frame. Default 1/20. */
  positionWeight: number;
  /** Velocity noise std as a fraction of width or height, per frame, per frame. Default 1/160. */
  velocityWeight: number;
}

/** Defaults of {@link KalmanBoxOptions}: ByteTrack / BoT-SORT's weights, at 30 fps. */
export const DEFAULT_KALMAN_BOX_OPTIONS: Readonly<KalmanBoxOptions> = Object.freeze({
  frameMs: 1000 / 30,
  positionWeight: 1 / 20,
  velocityWeight: 1 / 160,
});

const N = 8; // state: cx, cy, w, h (px), vcx, vcy, vw, vh (px/ms)
const M = 4; // measurement: cx, cy, w, h (px)
// Scratch for update(), shared by every filter: JS is single-threaded and update() does not re-enter, and a
// tracker updates ~100 filters a frame, whose garbage would otherwise cost as much as the arithmetic.
const S = new Float64Array(M * M);
const PHT = new Float64Array(N * M);
const GAIN = new Float64Array(N * M);

/**
 * A constant-velocity Kalman filter on one box, with state [cx, cy, w, h, vcx, vcy, vw, vh] (px and px/ms), as in
 * BoT-SORT's XYWH filter: width and height each get their own velocity (unlike ByteTrack's aspect ratio, which is
 * nearly constant for people but not for turning cars), and every noise term is proportional to the box's size,
 * so a far-away small box is not held to the same pixel accuracy as a near one. Time-based: `predict(dtMs)`.
 */
export class KalmanBox {
  private readonly mean: Float64Array;
  private readonly cov: Float64Array;
  private readonly options: Readonly<KalmanBoxOptions>;

  /** Starts at the measured box with zero velocity, and a velocity uncertainty wide enough to learn it fast. */
  constructor(xyxy: Readonly<Xyxy>, options: Partial<KalmanBoxOptions> = {}) {
    this.options = { ...DEFAULT_KALMAN_BOX_OPTIONS, ...options };
    const z = toCxcywh(xyxy);
    this.mean = new Float64Array(N);
    this.mean.set(z);
    const { positionWeight: wp, velocityWeight: wv, frameMs } = this.options;
    const [sx, sy] = this.scales();
    const std = [2 * wp * sx, 2 * wp * sy, 2 * wp * sx, 2 * wp * sy];
    std.push(...[sx, sy, sx, sy].map((s) => (10 * wv * s) / frameMs));
    this.cov = diagonal(std.map((s) => s * s));
  }

  /**
   * Moves the estimate `dtMs` ahead (dt ≥ 0; 0 changes nothing). `holdSize` zeroes the size velocities first, as
   * ByteTrack does for lost tracks, so a box shrinking as it is occluded does not collapse while unseen.
   */
  predict(dtMs: number, holdSize = false): void {
    if (!(dtMs >= 0) || !Number.isFinite(dtMs)) throw new RangeError(`KalmanBox.predict: dtMs is ${dtMs}; expected a finite number ≥ 0`);
    if (dtMs === 0) return;
    if (holdSize) {
      this.mean[6] = 0;
      this.mean[7] = 0;
    }
    const { positionWeight: wp, velocityWeight: wv, frameMs } = this.options;
    // Noise sized from the box before the move, as ByteTrack does; variances add over time, so they scale with dt.
    const [sx, sy] = this.scales();
    const frames = dtMs / frameMs;
    const q = [sx, sy, sx, sy].map((s) => (wp * s) ** 2 * frames);
    q.push(...[sx, sy, sx, sy].map((s) => ((wv * s) / frameMs) ** 2 * frames));

    // F = [[I, dt·I], [0, I]], so with P = [[A, B], [Bᵀ, C]] in 4 × 4 blocks, F·P·Fᵀ is
    // [[A + dt·(B + Bᵀ) + dt²·C, B + dt·C], [Bᵀ + dt·C, C]]: done in place, top-left first while B is still old.
    const p = this.cov;
    const at = (i: number, j: number): number => p[i * N + j] ?? 0;
    for (let i = 0; i < M; i++) {
      this.mean[i] = (this.mean[i] ?? 0) + dtMs * (this.mean[i + M] ?? 0);
      for (let j = 0; j < M; j++) {
        p[i * N + j] = at(i, j) + dtMs * (at(i, j + M) + at(i + M, j)) + dtMs * dtMs * at(i + M, j + M);
      }
    }
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < M; j++) {
        p[i * N + j + M] = at(i, j + M) + dtMs * at(i + M, j + M);
        p[(i + M) * N + j] = at(i + M, j) + dtMs * at(i + M, j + M);
      }
    }
    q.forEach((v, i) => (p[i * N + i] = at(i, i) + v));
    symmetrize(p, N);
  }

  /** Corrects the estimate with a measured box (`xyxy`, px). */
  update(xyxy: Readonly<Xyxy>): void {
    const z = toCxcywh(xyxy);
    const { positionWeight: wp } = this.options;
    const [sx, sy] = this.scales();
    const r = [sx, sy, sx, sy].map((s) => (wp * s) ** 2);
    const p = this.cov;
    const at = (i: number, j: number): number => p[i * N + j] ?? 0;
    // H = [I₄ 0]: S = H·P·Hᵀ + R is P's top-left block plus R, and P·Hᵀ is P's first four columns.
    const s = S;
    for (let i = 0; i < M; i++) for (let j = 0; j < M; j++) s[i * M + j] = at(i, j) + (i === j ? (r[i] ?? 0) : 0);
    // P·Hᵀ: a copy of P's first four columns (P changes below while they are still needed).
    const pht = PHT;
    for (let i = 0; i < N; i++) for (let k = 0; k < M; k++) pht[i * M + k] = at(i, k);
    // K = P·Hᵀ·S⁻¹ (8 × 4); S and S⁻¹ are symmetric, so row i of K solves S·kᵢ = row i of P·Hᵀ.
    const gain = solveSymmetricPositive(s, M, pht, N, GAIN);
    const innovation = z.map((v, i) => v - (this.mean[i] ?? 0));
    // x += K·(z − H·x);  P −= K·(P·Hᵀ)ᵀ
    for (let i = 0; i < N; i++) {
      let correction = 0;
      for (let k = 0; k < M; k++) correction += (gain[i * M + k] ?? 0) * (innovation[k] ?? 0);
      this.mean[i] = (this.mean[i] ?? 0) + correction;
      for (let j = 0; j < N; j++) {
        let sum = 0;
        for (let k = 0; k < M; k++) sum += (gain[i * M + k] ?? 0) * (pht[j * M + k] ?? 0);
        p[i * N + j] = at(i, j) - sum;
      }
    }
    symmetrize(p, N);
  }

  /** The estimated box (px); a size that went negative is clamped to 0 so the box stays well-formed. */
  get xyxy(): Xyxy {
    const [cx = 0, cy = 0, w = 0, h = 0] = this.mean;
    const hw = Math.max(0, w) / 2;
    const hh = Math.max(0, h) / 2;
    return [cx - hw, cy - hh, cx + hw, cy + hh];
  }

  /** A copy of the state [cx, cy, w, h, vcx, vcy, vw, vh] (px, px/ms). */
  get state(): number[] {
    return Array.from(this.mean);
  }

  /** A copy of the 8 × 8 state covariance, row-major. */
  get covariance(): number[] {
    return Array.from(this.cov);
  }

  /** Noise scales: the current width and height, at least 1 px so that a degenerate box keeps a usable filter. */
  private scales(): [number, number] {
    return [Math.max(1, Math.abs(this.mean[2] ?? 0)), Math.max(1, Math.abs(this.mean[3] ?? 0))];
  }
}

function toCxcywh([x1, y1, x2, y2]: Readonly<Xyxy>): [number, number, number, number] {
  return [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1];
}

function diagonal(values: readonly number[]): Float64Array {
  const out = new Float64Array(values.length * values.length);
  values.forEach((v, i) => (out[i * values.length + i] = v));
  return out;
}
