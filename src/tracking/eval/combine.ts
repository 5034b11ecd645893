import type { ClearMotResult } from './clear-mot.js';
import { identityScores, type IdentityResult } from './identity.js';

/** Identity scores without the trajectory pairs (which have no meaning across sequences: ids repeat). */
export type IdentityScores = Omit<IdentityResult, 'pairs'>;

/**
 * CLEAR-MOT over several sequences, as TrackEval combines them: counts are summed and the scores recomputed from
 * the sums (not averaged, so a long sequence weighs more than a short one).
 */
export function sumClearMot(results: readonly ClearMotResult[]): ClearMotResult {
  const total = (key: keyof ClearMotResult): number => results.reduce((a, r) => a + r[key], 0);
  const gtCount = total('gtCount');
  const matches = total('matches');
  const misses = total('misses');
  const falsePositives = total('falsePositives');
  const idSwitches = total('idSwitches');
  const iouSum = results.reduce((a, r) => a + (r.matches === 0 ? 0 : r.motpIou * r.matches), 0);
  return {
    gtCount,
    hypCount: total('hypCount'),
    matches,
    misses,
    falsePositives,
    idSwitches,
    fragmentations: total('fragmentations'),
    mota: gtCount === 0 ? Number.NaN : 1 - (misses + falsePositives + idSwitches) / gtCount,
    motpIou: matches === 0 ? Number.NaN : iouSum / matches,
    mostlyTracked: total('mostlyTracked'),
    partiallyTracked: total('partiallyTracked'),
    mostlyLost: total('mostlyLost'),
  };
}

/** Identity scores over several sequences: IDTP / IDFP / IDFN summed, scores recomputed (TrackEval's way). */
export function sumIdentity(results: readonly IdentityScores[]): IdentityScores {
  const total = (key: 'gtCount' | 'hypCount' | 'idtp' | 'idfp' | 'idfn'): number => results.reduce((a, r) => a + r[key], 0);
  return identityScores({ gtCount: total('gtCount'), hypCount: total('hypCount'), idtp: total('idtp'), idfp: total('idfp'), idfn: total('idfn') });
}
