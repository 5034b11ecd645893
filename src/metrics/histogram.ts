/** How a Histogram spaces its buckets; every field has a default. */
export interface HistogramOptions {
  /** Smallest value tracked with relative accuracy; smaller values (0 included) share one bucket. Default 0.01. */
  lowest?: number;
  /** Largest value tracked with relative accuracy; larger values share one bucket. Default 600 000 (10 min in ms). */
  highest?: number;
  /** Maximum relative error of a percentile, for values in [lowest, highest]. Default 0.01 (1 %). */
  relativeError?: number;
}

/** Percentiles, max and count of a set of values (e.g. milliseconds). */
export interface PercentileSummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/**
 * A fixed-size histogram of non-negative values, for percentiles over runs of any length in O(1) memory.
 *
 * Buckets are log-spaced with ratio γ = (1 + α) / (1 − α) (α = relativeError), and a bucket reports the value
 * 2·upper/(γ + 1), which is within α of everything in it (the DDSketch construction): a percentile is within α of
 * the exact nearest-rank percentile for values in [lowest, highest]. Below `lowest` the error is at most `lowest`
 * (absolute); above `highest` the exact max is reported. min, max, count and sum are exact. With the defaults
 * (0.01 … 600 000, 1 %) that is 899 buckets, 7 KB.
 */
export class Histogram {
  private readonly lowest: number;
  private readonly highest: number;
  private readonly gamma: number;
  private readonly logGamma: number;
  /**
   * [0] values below `lowest`, [1 + i] values in (lowest·γ^(i−1), lowest·γ^i], [last] values above `highest`.
   * Float64, not Uint32: exact counts up to 2^53, so a months-long run cannot wrap.
   */
  private readonly counts: Float64Array;
  private n = 0;
  private total = 0;
  private minValue = Infinity;
  private maxValue = -Infinity;

  constructor(options: HistogramOptions = {}) {
    this.lowest = options.lowest ?? 0.01;
    this.highest = options.highest ?? 600_000;
    const alpha = options.relativeError ?? 0.01;
    if (!(this.lowest > 0 && this.highest > this.lowest && alpha > 0 && alpha < 1)) {
      throw new RangeError(`Histogram: need 0 < lowest < highest and 0 < relativeError < 1, got ${JSON.stringify(options)}`);
    }
    this.gamma = (1 + alpha) / (1 - alpha);
    this.logGamma = Math.log(this.gamma);
    const inRange = Math.ceil(Math.log(this.highest / this.lowest) / this.logGamma) + 1;
    this.counts = new Float64Array(inRange + 2);
  }

  /** Number of buckets: fixed at construction, whatever is recorded. */
  get bucketCount(): number {
    return this.counts.length;
  }

  get count(): number {
    return this.n;
  }

  /** Exact smallest value recorded (0 when empty). */
  get min(): number {
    return this.n === 0 ? 0 : this.minValue;
  }

  /** Exact largest value recorded (0 when empty). */
  get max(): number {
    return this.n === 0 ? 0 : this.maxValue;
  }

  /** Exact mean (0 when empty). */
  get mean(): number {
    return this.n === 0 ? 0 : this.total / this.n;
  }

  /** Records one value; NaN is ignored and negative values count as 0. */
  record(value: number): void {
    if (Number.isNaN(value)) return;
    const v = Math.max(0, value);
    this.n++;
    this.total += v;
    if (v < this.minValue) this.minValue = v;
    if (v > this.maxValue) this.maxValue = v;
    const last = this.counts.length - 1;
    let bucket: number;
    if (v < this.lowest) bucket = 0;
    else if (v > this.highest) bucket = last;
    // A value on a bucket boundary may land one bucket up through rounding; that bucket's value is still within α.
    else bucket = Math.min(last - 1, 1 + Math.max(0, Math.ceil(Math.log(v / this.lowest) / this.logGamma)));
    this.counts[bucket] = (this.counts[bucket] ?? 0) + 1;
  }

  /** Nearest-rank percentile, p in [0, 100] (0 when empty), within the stated error; clamped to [min, max]. */
  percentile(p: number): number {
    if (this.n === 0) return 0;
    const rank = Math.min(this.n, Math.max(1, Math.ceil((p / 100) * this.n)));
    let seen = 0;
    const last = this.counts.length - 1;
    for (let bucket = 0; bucket <= last; bucket++) {
      seen += this.counts[bucket] ?? 0;
      if (seen < rank) continue;
      if (bucket === 0) return this.minValue;
      if (bucket === last) return this.maxValue;
      const upper = this.lowest * this.gamma ** (bucket - 1);
      return Math.min(this.maxValue, Math.max(this.minValue, (2 * upper) / (this.gamma + 1)));
    }
    return this.maxValue;
  }

  /** p50 / p95 / p99 / max / count in one object. */
  summary(): PercentileSummary {
    return { count: this.n, p50: this.percentile(50), p95: this.percentile(95), p99: this.percentile(99), max: this.max };
  }

  /** Forgets every value (the buckets stay allocated): start of a new window. */
  reset(): void {
    this.counts.fill(0);
    this.n = 0;
    this.total = 0;
    this.minValue = Infinity;
    this.maxValue = -Infinity;
  }
}
