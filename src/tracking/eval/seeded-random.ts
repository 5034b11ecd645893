/** A deterministic random source for the synthetic scenes (so a failing scene can be replayed exactly). */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Gaussian, by Box–Muller. */
  normal(mean: number, sigma: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  /** Poisson-distributed count with the given mean (Knuth's method; fine for the small means used here). */
  poisson(mean: number): number;
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number;
}

/** mulberry32: 32-bit state, good enough statistically for test scenes, and identical on every platform. */
export function seededRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    normal: (mean, sigma) => mean + sigma * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()),
    chance: (p) => next() < p,
    poisson: (mean) => {
      const limit = Math.exp(-mean);
      let k = 0;
      for (let p = next(); p > limit; p *= next()) k++;
      return k;
    },
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
  };
}
