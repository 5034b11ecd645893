/**
 * Optimal linear assignment on a rectangular cost matrix (Hungarian method with potentials, the shortest
 * augmenting path form of Jonker-Volgenant; O(k²·n) for k = min(rows, cols), n = max(rows, cols)).
 */

export interface AssignmentResult {
  /** Matched pairs, ascending by row. */
  matches: Array<[row: number, col: number]>;
  /** Ascending. */
  unmatchedRows: number[];
  /** Ascending. */
  unmatchedCols: number[];
}

export interface AssignmentOptions {
  /**
   * What "optimal" means once some pairs are forbidden.
   * - `'maxMatches'` (default): as many allowed pairs as possible, then the least total cost among those. This is
   *   the CLEAR-MOT / py-motmetrics rule (forbidden pairs as a large constant, dropped afterwards).
   * - `'minCost'`: minimise Σ (cost − maxCost) over the matched pairs, i.e. leaving a row and a column unmatched
   *   costs `maxCost`; a pair is matched only where it lowers the total, so one good pair is not traded for two
   *   poor ones. This is ByteTrack's `lap.lapjv(cost, extend_cost=True, cost_limit=maxCost)`; a tracker wants it
   *   because the trade is an id switch. Exact ties prefer more matches. With `maxCost = Infinity` it behaves as
   *   `'maxMatches'`.
   */
  objective?: 'maxMatches' | 'minCost';
}

/**
 * Assigns rows to columns of `cost` (rows × cols, all rows the same length) at minimum total cost. A pair whose
 * cost is above `maxCost`, NaN or ±Infinity is forbidden: it is never in `matches`, and its row and column are
 * reported unmatched unless matched elsewhere. An empty `cost` (0 rows) has 0 columns. Deterministic on ties.
 *
 * @throws RangeError when `maxCost` is NaN or the rows differ in length.
 */
export function solveAssignment(
  cost: readonly (readonly number[])[],
  maxCost: number,
  options: AssignmentOptions = {},
): AssignmentResult {
  if (Number.isNaN(maxCost)) throw new RangeError('solveAssignment: maxCost is NaN; expected a number');
  const rows = cost.length;
  const cols = cost[0]?.length ?? 0;
  cost.forEach((row, r) => {
    if (row.length !== cols) {
      throw new RangeError(`solveAssignment: row ${r} has ${row.length} columns, row 0 has ${cols}; expected a rectangular matrix`);
    }
  });
  const allowed = (c: number): boolean => Number.isFinite(c) && c <= maxCost;
  const minCost = options.objective === 'minCost' && Number.isFinite(maxCost);

  const matches: Array<[number, number]> = [];
  const rowMatched = new Array<boolean>(rows).fill(false);
  const colMatched = new Array<boolean>(cols).fill(false);
  // Both objectives are sums over the groups of rows and columns linked by allowed pairs, so each group is solved
  // alone: a tracker's matrix is sparse (a box overlaps a few others), and many tiny O(k³) beat one O(n³).
  for (const group of linkedGroups(cost, cols, allowed)) {
    const at = (i: number, j: number): number => cost[group.rows[i] ?? -1]?.[group.cols[j] ?? -1] ?? NaN;
    for (const [i, j] of solveDense(at, group.rows.length, group.cols.length, allowed, minCost, maxCost)) {
      const r = group.rows[i] ?? -1;
      const c = group.cols[j] ?? -1;
      matches.push([r, c]);
      rowMatched[r] = true;
      colMatched[c] = true;
    }
  }
  matches.sort((p, q) => p[0] - q[0]);
  return { matches, unmatchedRows: indicesOf(rowMatched, false), unmatchedCols: indicesOf(colMatched, false) };
}

/** The optimal allowed pairs of a rows × cols problem given by `at`. */
function solveDense(
  at: (row: number, col: number) => number,
  rows: number,
  cols: number,
  allowed: (c: number) => boolean,
  minCost: boolean,
  maxCost: number,
): Array<[number, number]> {
  // The solver wants n ≤ m; transposing changes neither objective.
  const transposed = rows > cols;
  const n = transposed ? cols : rows;
  const m = transposed ? rows : cols;
  const get = (i: number, j: number): number => (transposed ? at(j, i) : at(i, j));
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      const c = get(i, j);
      if (allowed(c)) {
        lo = Math.min(lo, c);
        hi = Math.max(hi, c);
      }
    }
  }
  // minCost: n extra "stay unmatched" columns, one per row, at maxCost (+ a hair so that a pair at exactly
  // maxCost is kept). Forbidden pairs cost more than staying unmatched, so they are never worth taking.
  // maxMatches: every full assignment has exactly n pairs, so shifting allowed costs to [0, hi − lo] changes
  // nothing, and a forbidden pair priced above n·(hi − lo) loses to any assignment with one forbidden pair fewer.
  const width = minCost ? m + n : m;
  const stay = maxCost + Math.max(1, Math.abs(maxCost)) * 1e-9;
  const forbidden = minCost ? stay + Math.max(1, Math.abs(stay)) : n * (hi - lo) + 1;
  const a = new Float64Array(n * width);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < width; j++) {
      const c = j < m ? get(i, j) : NaN;
      a[i * width + j] = j >= m ? stay : !allowed(c) ? forbidden : minCost ? c : c - lo;
    }
  }
  const assigned = hungarian(a, n, width);
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    const j = assigned[i] ?? -1;
    if (j >= 0 && j < m && allowed(get(i, j))) pairs.push(transposed ? [j, i] : [i, j]);
  }
  return pairs;
}

/** Groups of rows and columns connected by allowed pairs (union-find; rows are nodes 0…, columns follow). */
function linkedGroups(
  cost: readonly (readonly number[])[],
  cols: number,
  allowed: (c: number) => boolean,
): Array<{ rows: number[]; cols: number[] }> {
  const rows = cost.length;
  const parent = Array.from({ length: rows + cols }, (_, i) => i);
  const root = (x: number): number => {
    while (parent[x] !== x) x = parent[x] = parent[parent[x] ?? x] ?? x;
    return x;
  };
  const linked = new Array<boolean>(rows + cols).fill(false);
  for (let i = 0; i < rows; i++) {
    const row = cost[i] ?? [];
    for (let j = 0; j < cols; j++) {
      if (!allowed(row[j] ?? NaN)) continue;
      parent[root(i)] = root(rows + j);
      linked[i] = linked[rows + j] = true;
    }
  }
  const groups = new Map<number, { rows: number[]; cols: number[] }>();
  for (let x = 0; x < rows + cols; x++) {
    if (!linked[x]) continue;
    const key = root(x);
    const group = groups.get(key) ?? { rows: [], cols: [] };
    groups.set(key, group);
    if (x < rows) group.rows.push(x);
    else group.cols.push(x - rows);
  }
  return [...groups.values()];
}

function indicesOf(flags: readonly boolean[], value: boolean): number[] {
  const out: number[] = [];
  flags.forEach((f, i) => {
    if (f === value) out.push(i);
  });
  return out;
}

/**
 * Minimum-cost assignment of every row of the n × m matrix `a` (row-major, all finite, n ≤ m) to a distinct
 * column. Returns the column of each row. Kuhn-Munkres with row/column potentials: each row is added by a
 * Dijkstra-like search for the cheapest augmenting path on reduced costs (which the potentials keep ≥ 0).
 */
function hungarian(a: Float64Array, n: number, m: number): Int32Array {
  // 1-based with column 0 as the virtual start of each augmenting path.
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const colRow = new Int32Array(m + 1); // row matched to each column, 0 = free
  const way = new Int32Array(m + 1); // previous column on the shortest path
  const minv = new Float64Array(m + 1);
  const used = new Uint8Array(m + 1);
  for (let i = 1; i <= n; i++) {
    colRow[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = colRow[j0] ?? 0;
      const ui0 = u[i0] ?? 0;
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const reduced = (a[(i0 - 1) * m + (j - 1)] ?? 0) - ui0 - (v[j] ?? 0);
        if (reduced < (minv[j] ?? Infinity)) {
          minv[j] = reduced;
          way[j] = j0;
        }
        if ((minv[j] ?? Infinity) < delta) {
          delta = minv[j] ?? Infinity;
          j1 = j;
        }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          const r = colRow[j] ?? 0;
          u[r] = (u[r] ?? 0) + delta;
          v[j] = (v[j] ?? 0) - delta;
        } else {
          minv[j] = (minv[j] ?? 0) - delta;
        }
      }
      j0 = j1;
    } while ((colRow[j0] ?? 0) !== 0);
    // Flip the augmenting path.
    do {
      const j1 = way[j0] ?? 0;
      colRow[j0] = colRow[j1] ?? 0;
      j0 = j1;
    } while (j0 !== 0);
  }
  const rowCol = new Int32Array(n).fill(-1);
  for (let j = 1; j <= m; j++) {
    const r = colRow[j] ?? 0;
    if (r > 0) rowCol[r - 1] = j - 1;
  }
  return rowCol;
}
