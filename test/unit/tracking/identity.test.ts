import { describe, expect, it } from 'vitest';
import { clearMot, identityMetrics, type EvalFrame } from '../../../src/tracking/eval/index.js';
import type { Xyxy } from '../../../src/tracking/types.js';

const A: Xyxy = [0, 0, 10, 10];
const B: Xyxy = [100, 0, 110, 10];
const C: Xyxy = [200, 0, 210, 10];

describe('identityMetrics', () => {
  it('toy case: one object whose id changes halfway; IDF1 credits only the longer id (hand-computed)', () => {
    // GT 1 in 5 frames; hypothesis 1 follows it in frames 1–2, hypothesis 2 in frames 3–5.
    const frames: EvalFrame[] = [1, 1, 2, 2, 2].map((hypId) => ({ gt: [{ id: 1, xyxy: A }], hyp: [{ id: hypId, xyxy: A }] }));
    const r = identityMetrics(frames);
    // Best one-to-one pairing: GT 1 – hyp 2 (3 shared frames). IDTP = 3; IDFN = 5 GT boxes − 3 = 2;
    // IDFP = 5 hypothesis boxes − 3 = 2 (hyp 1's two boxes). IDF1 = 2·3 / (2·3 + 2 + 2) = 0.6; IDP = IDR = 3/5.
    expect(r).toMatchObject({ gtCount: 5, hypCount: 5, idtp: 3, idfn: 2, idfp: 2, pairs: [{ gtId: 1, hypId: 2, idtp: 3 }] });
    expect(r.idf1).toBeCloseTo(0.6, 12);
    expect(r.idp).toBeCloseTo(0.6, 12);
    expect(r.idr).toBeCloseTo(0.6, 12);
    // Frame by frame (CLEAR-MOT) every box is matched: 5 TP, and the change is one switch: MOTA = 1 − 1/5.
    const c = clearMot(frames);
    expect(c).toMatchObject({ matches: 5, idSwitches: 1 });
    expect(c.mota).toBeCloseTo(0.8, 12);
  });

  it('picks the best global assignment, not the largest overlap first (hand-computed)', () => {
    // Frames 1–3: GT a (id 1) with hyp 1. Frames 4–5: GT a with hyp 2, and GT b (id 2) with hyp 1.
    const early: EvalFrame = { gt: [{ id: 1, xyxy: A }], hyp: [{ id: 1, xyxy: A }] };
    const late: EvalFrame = { gt: [{ id: 1, xyxy: A }, { id: 2, xyxy: B }], hyp: [{ id: 2, xyxy: A }, { id: 1, xyxy: B }] };
    const r = identityMetrics([early, early, early, late, late]);
    // Shared frames: (a, 1) = 3, (a, 2) = 2, (b, 1) = 2, (b, 2) = 0.
    // Largest overlap first takes a–1 (3), leaving b–2 (0): IDTP 3. The optimum is a–2 + b–1 = 2 + 2 = 4.
    // GT boxes: a 5 + b 2 = 7; hypothesis boxes: 1 → 5, 2 → 2 = 7.
    // IDTP = 4, IDFN = 7 − 4 = 3, IDFP = 7 − 4 = 3; IDF1 = 2·4 / (2·4 + 3 + 3) = 8/14 = 4/7.
    expect(r).toMatchObject({ gtCount: 7, hypCount: 7, idtp: 4, idfn: 3, idfp: 3 });
    expect(r.idf1).toBeCloseTo(4 / 7, 12);
    expect(r.pairs).toEqual([
      { gtId: 1, hypId: 2, idtp: 2 },
      { gtId: 2, hypId: 1, idtp: 2 },
    ]);
  });

  it('leaves trajectories unpaired through the dummy rows and columns (hand-computed)', () => {
    // GT 1 with hyp 5 in both frames; GT 2 (at C) never overlapped; hyp 9 (at B) never on any GT.
    const frame: EvalFrame = { gt: [{ id: 1, xyxy: A }, { id: 2, xyxy: C }], hyp: [{ id: 5, xyxy: A }, { id: 9, xyxy: B }] };
    const r = identityMetrics([frame, frame]);
    // IDTP = 2 (GT 1–hyp 5); IDFN = GT 2's 2 boxes; IDFP = hyp 9's 2 boxes; IDF1 = 4 / (4 + 2 + 2) = 0.5
    expect(r).toMatchObject({ idtp: 2, idfn: 2, idfp: 2, idf1: 0.5, idp: 0.5, idr: 0.5, pairs: [{ gtId: 1, hypId: 5, idtp: 2 }] });
  });

  it('counts a shared frame only at IoU ≥ threshold', () => {
    const frames: EvalFrame[] = [{ gt: [{ id: 1, xyxy: A }], hyp: [{ id: 1, xyxy: [0, 0, 10, 4] }] }]; // IoU 0.4
    expect(identityMetrics(frames)).toMatchObject({ idtp: 0, idfn: 1, idfp: 1, idf1: 0 });
    expect(identityMetrics(frames, { iouThreshold: 0.4 })).toMatchObject({ idtp: 1, idf1: 1 });
  });

  it('perfect tracking scores IDF1 = IDP = IDR = 1', () => {
    const frames: EvalFrame[] = Array.from({ length: 8 }, (_, t) => ({
      gt: [{ id: 1, xyxy: A }, { id: 2, xyxy: [100 + t, 0, 110 + t, 10] }],
      hyp: [{ id: 30, xyxy: A }, { id: 31, xyxy: [100 + t, 0, 110 + t, 10] }],
    }));
    expect(identityMetrics(frames)).toMatchObject({ idtp: 16, idfp: 0, idfn: 0, idf1: 1, idp: 1, idr: 1 });
  });

  it('handles empty inputs: scores without a denominator are NaN', () => {
    for (const frames of [[], [{ gt: [], hyp: [] }]]) {
      const r = identityMetrics(frames);
      expect(r).toMatchObject({ gtCount: 0, hypCount: 0, idtp: 0, idfp: 0, idfn: 0, pairs: [] });
      expect([r.idf1, r.idp, r.idr]).toEqual([NaN, NaN, NaN]);
    }
    expect(identityMetrics([{ gt: [{ id: 1, xyxy: A }], hyp: [] }])).toMatchObject({ idfn: 1, idf1: 0, idr: 0, idp: NaN });
    expect(identityMetrics([{ gt: [], hyp: [{ id: 1, xyxy: A }] }])).toMatchObject({ idfp: 1, idf1: 0, idp: 0, idr: NaN });
  });

  it('rejects a frame that repeats an id', () => {
    expect(() => identityMetrics([{ gt: [], hyp: [{ id: 3, xyxy: A }, { id: 3, xyxy: B }] }])).toThrow(/hyp id 3 appears twice/);
  });
});
