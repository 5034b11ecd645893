/**
 * The few dense matrix operations the box Kalman filter needs (8 × 8 and smaller), on row-major `Float64Array`s.
 * Hand-written because the sizes are fixed and tiny; a linear algebra dependency would cost more than it saves.
 * (The filter's products are written out in kalman-box.ts, where F and H's block structure makes them cheap.)
 */

/**
 * Solves S·x = b for each of the `count` right-hand sides stored as rows of `rhs` (count × n), where S (n × n) is
 * symmetric positive definite, as a Kalman innovation covariance is: Cholesky (S = L·Lᵀ) then two triangular
 * solves, cheaper and better conditioned than forming S⁻¹. Writes the solutions as rows (count × n) into `out`
 * (allocated when not given; callers on a hot path pass a scratch buffer) and returns it.
 * @throws RangeError when S is not positive definite.
 */
export function solveSymmetricPositive(
  s: Float64Array,
  n: number,
  rhs: Float64Array,
  count: number,
  out = new Float64Array(count * n),
): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = s[i * n + j] ?? 0;
      for (let k = 0; k < j; k++) sum -= (l[i * n + k] ?? 0) * (l[j * n + k] ?? 0);
      if (i === j) {
        if (!(sum > 0)) throw new RangeError(`solveSymmetricPositive: the ${n}×${n} matrix is not positive definite`);
        l[i * n + i] = Math.sqrt(sum);
      } else {
        l[i * n + j] = sum / (l[j * n + j] ?? 1);
      }
    }
  }
  for (let r = 0; r < count; r++) {
    const o = r * n;
    for (let i = 0; i < n; i++) {
      let sum = rhs[o + i] ?? 0;
      for (let k = 0; k < i; k++) sum -= (l[i * n + k] ?? 0) * (out[o + k] ?? 0);
      out[o + i] = sum / (l[i * n + i] ?? 1);
    }
    for (let i = n - 1; i >= 0; i--) {
      let sum = out[o + i] ?? 0;
      for (let k = i + 1; k < n; k++) sum -= (l[k * n + i] ?? 0) * (out[o + k] ?? 0);
      out[o + i] = sum / (l[i * n + i] ?? 1);
    }
  }
  return out;
}

/** Replaces the n × n matrix `a` in place by (a + aᵀ) / 2; covariances drift from symmetry by rounding otherwise. */
export function symmetrize(a: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const m = ((a[i * n + j] ?? 0) + (a[j * n + i] ?? 0)) / 2;
      a[i * n + j] = m;
      a[j * n + i] = m;
    }
  }
}
