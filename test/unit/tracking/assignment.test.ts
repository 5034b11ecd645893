import { describe, expect, it } from 'vitest';
import { solveAssignment, type AssignmentOptions, type AssignmentResult } from '../../../src/tracking/assignment.js';

type Objective = NonNullable<AssignmentOptions['objective']>;
type Matrix = number[][];

/** Small deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const allowed = (c: number, maxCost: number): boolean => Number.isFinite(c) && c <= maxCost;

/** Best (count, total) over every partial matching of allowed pairs, by the objective's order. */
function bruteForce(cost: Matrix, maxCost: number, objective: Objective): { count: number; total: number } {
  const cols = cost[0]?.length ?? 0;
  let best: { count: number; total: number } | undefined;
  const better = (count: number, total: number): boolean => {
    if (best === undefined) return true;
    if (objective === 'maxMatches') {
      return count > best.count || (count === best.count && total < best.total - 1e-9);
    }
    const key = total - count * maxCost;
    const bestKey = best.total - best.count * maxCost;
    return key < bestKey - 1e-9 || (Math.abs(key - bestKey) <= 1e-9 && count > best.count);
  };
  const usedCols = new Array<boolean>(cols).fill(false);
  const visit = (row: number, count: number, total: number): void => {
    if (row === cost.length) {
      if (better(count, total)) best = { count, total };
      return;
    }
    visit(row + 1, count, total);
    for (let j = 0; j < cols; j++) {
      const c = cost[row]?.[j] ?? NaN;
      if (usedCols[j] || !allowed(c, maxCost)) continue;
      usedCols[j] = true;
      visit(row + 1, count + 1, total + c);
      usedCols[j] = false;
    }
  };
  visit(0, 0, 0);
  return best ?? { count: 0, total: 0 };
}

/** Checks the result is a valid matching of allowed pairs whose unmatched lists are the complement. */
function checkValid(cost: Matrix, maxCost: number, result: AssignmentResult): { count: number; total: number } {
  const rows = cost.length;
  const cols = cost[0]?.length ?? 0;
  const rowSet = new Set<number>();
  const colSet = new Set<number>();
  let total = 0;
  for (const [r, c] of result.matches) {
    expect(rowSet.has(r) || colSet.has(c)).toBe(false);
    rowSet.add(r);
    colSet.add(c);
    const value = cost[r]?.[c] ?? NaN;
    expect(allowed(value, maxCost)).toBe(true);
    total += value;
  }
  expect(result.unmatchedRows).toEqual([...Array(rows).keys()].filter((r) => !rowSet.has(r)));
  expect(result.unmatchedCols).toEqual([...Array(cols).keys()].filter((c) => !colSet.has(c)));
  return { count: result.matches.length, total };
}

/** `sparse` forbids most pairs, so the matrix splits into independent groups (as a tracker's usually does). */
function randomMatrix(next: () => number, rows: number, cols: number, ties: boolean, sparse = false): Matrix {
  return Array.from({ length: rows }, () =>
    Array.from({ length: cols }, () => {
      const x = next();
      if (x < 0.08) return NaN;
      if (x < 0.14) return Infinity;
      if (x < 0.18) return -Infinity;
      if (sparse && x < 0.75) return 5;
      // Quarter steps make exact ties common (and sums of them exact in binary floating point).
      return ties ? Math.floor(next() * 5) / 4 : next() * 1.2;
    }),
  );
}

describe('solveAssignment', () => {
  for (const objective of ['maxMatches', 'minCost'] as const) {
    it(`equals brute force on random matrices up to 6×6, rectangular both ways, dense and sparse (${objective})`, () => {
      const next = rng(objective === 'maxMatches' ? 1 : 2);
      for (let trial = 0; trial < 1500; trial++) {
        const rows = Math.floor(next() * 7);
        const cols = rows === 0 ? 0 : Math.floor(next() * 7);
        const cost = randomMatrix(next, rows, cols, trial % 2 === 0, trial % 4 >= 2);
        const maxCost = trial % 3 === 0 ? 0.75 : 1;
        const got = checkValid(cost, maxCost, solveAssignment(cost, maxCost, { objective }));
        const want = bruteForce(cost, maxCost, objective);
        expect({ trial, count: got.count }).toEqual({ trial, count: want.count });
        expect(got.total).toBeCloseTo(want.total, 9);
      }
    });
  }

  it('defaults to as many matches as possible, then least cost (not greedy)', () => {
    // Greedy takes (0,0) at 0.1 and is left with (1,1) at 0.9; the optimum is 0.2 + 0.3.
    const cost = [
      [0.1, 0.2],
      [0.3, 0.9],
    ];
    expect(solveAssignment(cost, 1).matches).toEqual([
      [0, 1],
      [1, 0],
    ]);
  });

  it('minCost keeps one good pair rather than two poor ones (ByteTrack gating)', () => {
    const cost = [
      [0.1, 0.75],
      [0.75, Infinity],
    ];
    expect(solveAssignment(cost, 0.8).matches).toEqual([
      [0, 1],
      [1, 0],
    ]);
    expect(solveAssignment(cost, 0.8, { objective: 'minCost' })).toEqual({
      matches: [[0, 0]],
      unmatchedRows: [1],
      unmatchedCols: [1],
    });
  });

  it.each<{ name: string; cost: Matrix; maxCost: number; want: AssignmentResult }>([
    { name: '0 rows', cost: [], maxCost: 1, want: { matches: [], unmatchedRows: [], unmatchedCols: [] } },
    { name: '3 × 0', cost: [[], [], []], maxCost: 1, want: { matches: [], unmatchedRows: [0, 1, 2], unmatchedCols: [] } },
    { name: '1 × 1 allowed', cost: [[0.4]], maxCost: 1, want: { matches: [[0, 0]], unmatchedRows: [], unmatchedCols: [] } },
    { name: '1 × 1 exactly maxCost', cost: [[0.8]], maxCost: 0.8, want: { matches: [[0, 0]], unmatchedRows: [], unmatchedCols: [] } },
    { name: '1 × 1 above maxCost', cost: [[0.81]], maxCost: 0.8, want: { matches: [], unmatchedRows: [0], unmatchedCols: [0] } },
    {
      name: 'all forbidden (NaN, ±Infinity, above maxCost)',
      cost: [
        [NaN, Infinity],
        [-Infinity, 2],
      ],
      maxCost: 1,
      want: { matches: [], unmatchedRows: [0, 1], unmatchedCols: [0, 1] },
    },
    {
      name: 'wide 2 × 4',
      cost: [
        [0.9, 0.5, 0.1, 0.7],
        [0.2, 0.6, 0.1, 0.9],
      ],
      maxCost: 1,
      want: { matches: [[0, 2], [1, 0]], unmatchedRows: [], unmatchedCols: [1, 3] },
    },
    {
      name: 'tall 4 × 2 with a forbidden row',
      cost: [
        [0.9, 0.5],
        [NaN, NaN],
        [0.2, 0.6],
        [0.3, 0.05],
      ],
      maxCost: 1,
      want: { matches: [[2, 0], [3, 1]], unmatchedRows: [0, 1], unmatchedCols: [] },
    },
  ])('$name', ({ cost, maxCost, want }) => {
    for (const objective of ['maxMatches', 'minCost'] as const) {
      expect(solveAssignment(cost, maxCost, { objective })).toEqual(want);
    }
  });

  it('is deterministic on ties', () => {
    const cost = [
      [0.5, 0.5, 0.5],
      [0.5, 0.5, 0.5],
      [0.5, 0.5, 0.5],
    ];
    const first = solveAssignment(cost, 1);
    expect(first.matches).toHaveLength(3);
    expect(solveAssignment(cost, 1)).toEqual(first);
  });

  it('accepts negative costs and an infinite maxCost', () => {
    expect(solveAssignment([[-5, 1], [2, -1]], Infinity, { objective: 'minCost' }).matches).toEqual([
      [0, 0],
      [1, 1],
    ]);
  });

  it.each([
    { name: 'NaN maxCost', cost: [[0.1]], maxCost: NaN, message: /maxCost is NaN/ },
    { name: 'ragged rows', cost: [[0.1, 0.2], [0.3]], maxCost: 1, message: /row 1 has 1 columns, row 0 has 2/ },
  ])('rejects $name', ({ cost, maxCost, message }) => {
    expect(() => solveAssignment(cost, maxCost)).toThrow(RangeError);
    expect(() => solveAssignment(cost, maxCost)).toThrow(message);
  });

  it('solves 200 × 200 quickly enough for a tracker', () => {
    const next = rng(3);
    const cost = randomMatrix(next, 200, 200, false);
    const result = solveAssignment(cost, 1, { objective: 'minCost' });
    checkValid(cost, 1, result);
  });
});
