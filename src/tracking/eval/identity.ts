import { solveAssignment } from '../assignment.js';
import { iou } from '../iou.js';
import { assertUniqueIds, DEFAULT_IOU_THRESHOLD, IOU_EPSILON, type EvalFrame, type MatchOptions } from './eval-frame.js';

/** Identity scores (Ristani et al. 2016): how long each object keeps the one id it is best associated with. */
export interface IdentityResult {
  /** GT boxes over all frames. */
  gtCount: number;
  /** Hypothesis boxes over all frames. */
  hypCount: number;
  /** Boxes where a GT trajectory overlaps (IoU ≥ threshold) the hypothesis trajectory it is assigned to. */
  idtp: number;
  /** Hypothesis boxes not counted in IDTP. */
  idfp: number;
  /** GT boxes not counted in IDTP. */
  idfn: number;
  /** 2·IDTP / (2·IDTP + IDFP + IDFN); NaN when there are no boxes at all. */
  idf1: number;
  /** IDTP / hypCount (identity precision); NaN without hypotheses. */
  idp: number;
  /** IDTP / gtCount (identity recall); NaN without ground truth. */
  idr: number;
  /** The optimal one-to-one pairing of trajectories, only pairs that share at least one frame. */
  pairs: Array<{ gtId: number; hypId: number; idtp: number }>;
}

/**
 * IDF1 / IDP / IDR: one global, one-to-one assignment of GT trajectories to hypothesis trajectories that maximises
 * IDTP, over the whole sequence (unlike CLEAR-MOT, which matches frame by frame). The cost matrix is TrackEval's:
 * (G + H)² with a dummy column per GT trajectory (cost: all its boxes become IDFN) and a dummy row per hypothesis
 * trajectory (cost: all its boxes become IDFP), so leaving a trajectory unpaired is an option with a price.
 */
export function identityMetrics(frames: readonly EvalFrame[], options: Partial<MatchOptions> = {}): IdentityResult {
  const threshold = options.iouThreshold ?? DEFAULT_IOU_THRESHOLD;
  const gtIndex = new Map<number, number>();
  const hypIndex = new Map<number, number>();
  const gtBoxes: number[] = [];
  const hypBoxes: number[] = [];
  // Frames in which a GT / hypothesis trajectory pair overlaps, keyed `g * 2^26 + h` (indices, not ids).
  const overlapping = new Map<number, number>();
  const indexOf = (ids: Map<number, number>, counts: number[], id: number): number => {
    let i = ids.get(id);
    if (i === undefined) {
      i = counts.length;
      ids.set(id, i);
      counts.push(0);
    }
    counts[i]!++;
    return i;
  };
  frames.forEach((frame, frameIndex) => {
    assertUniqueIds(frame.gt, 'gt', frameIndex);
    assertUniqueIds(frame.hyp, 'hyp', frameIndex);
    const hs = frame.hyp.map((h) => indexOf(hypIndex, hypBoxes, h.id));
    for (const gt of frame.gt) {
      const g = indexOf(gtIndex, gtBoxes, gt.id);
      frame.hyp.forEach((hyp, k) => {
        if (iou(gt.xyxy, hyp.xyxy) < threshold - IOU_EPSILON) return;
        const key = g * 2 ** 26 + hs[k]!;
        overlapping.set(key, (overlapping.get(key) ?? 0) + 1);
      });
    }
  });
  const shared = (g: number, h: number): number => overlapping.get(g * 2 ** 26 + h) ?? 0;

  const gtCount = sum(gtBoxes);
  const hypCount = sum(hypBoxes);
  const { idfn, idfp, pairs } = assignTrajectories(gtBoxes, hypBoxes, shared);
  const idtp = gtCount - idfn;
  const gtIds = [...gtIndex.keys()];
  const hypIds = [...hypIndex.keys()];
  return {
    ...identityScores({ gtCount, hypCount, idtp, idfp, idfn }),
    pairs: pairs.map(([g, h]) => ({ gtId: gtIds[g]!, hypId: hypIds[h]!, idtp: shared(g, h) })),
  };
}

/** IDF1 / IDP / IDR from the counts (one sequence, or several summed: TrackEval recomputes them the same way). */
export function identityScores(c: Pick<IdentityResult, 'gtCount' | 'hypCount' | 'idtp' | 'idfp' | 'idfn'>): Omit<IdentityResult, 'pairs'> {
  return {
    ...c,
    idf1: c.gtCount + c.hypCount === 0 ? Number.NaN : (2 * c.idtp) / (2 * c.idtp + c.idfp + c.idfn),
    idp: c.hypCount === 0 ? Number.NaN : c.idtp / c.hypCount,
    idr: c.gtCount === 0 ? Number.NaN : c.idtp / c.gtCount,
  };
}

/** Solves TrackEval's (G + H)² bipartite problem; returns IDFN, IDFP and the real (GT, hypothesis) pairs chosen. */
function assignTrajectories(gtBoxes: readonly number[], hypBoxes: readonly number[], shared: (g: number, h: number) => number): { idfn: number; idfp: number; pairs: Array<[number, number]> } {
  const g = gtBoxes.length;
  const h = hypBoxes.length;
  if (g + h === 0) return { idfn: 0, idfp: 0, pairs: [] };
  // fn / fp per cell, as TrackEval's fn_mat / fp_mat; rows: GT then dummy (one per hypothesis); cols: hypotheses
  // then dummy (one per GT). TrackEval's 1e10 for forbidden cells becomes Infinity, which the solver never matches.
  const fnAt = (r: number, c: number): number => {
    if (r >= g) return 0;
    if (c < h) return gtBoxes[r]! - shared(r, c);
    return c - h === r ? gtBoxes[r]! : Number.POSITIVE_INFINITY;
  };
  const fpAt = (r: number, c: number): number => {
    if (c >= h) return 0;
    if (r < g) return hypBoxes[c]! - shared(r, c);
    return r - g === c ? hypBoxes[c]! : Number.POSITIVE_INFINITY;
  };
  const n = g + h;
  const cost = Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => fnAt(r, c) + fpAt(r, c)));
  // 'maxMatches' (the default objective) completes the assignment first, then minimises IDFN + IDFP.
  const solution = solveAssignment(cost, Number.POSITIVE_INFINITY);
  if (solution.matches.length !== n) {
    // A complete pairing always exists (each trajectory with its own dummy), so this is a solver bug.
    throw new Error(`identity assignment left ${n - solution.matches.length} of ${n} rows unmatched; expected a complete assignment`);
  }
  let idfn = 0;
  let idfp = 0;
  const pairs: Array<[number, number]> = [];
  for (const [r, c] of solution.matches) {
    idfn += fnAt(r, c);
    idfp += fpAt(r, c);
    if (r < g && c < h && shared(r, c) > 0) pairs.push([r, c]);
  }
  return { idfn, idfp, pairs };
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
