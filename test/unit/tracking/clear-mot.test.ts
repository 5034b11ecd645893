import { describe, expect, it } from 'vitest';
import { clearMot, type EvalFrame } from '../../../src/tracking/eval/index.js';
import type { Xyxy } from '../../../src/tracking/types.js';

/** A 10 px tall box spanning x0..x1: two such boxes have IoU = overlap length / union length, easy to do by hand. */
const span = (x0: number, x1: number): Xyxy => [x0, 0, x1, 10];
/** The reference GT box [0, 0, 10, 10], and boxes inside it of height h (IoU = h / 10). */
const A: Xyxy = [0, 0, 10, 10];
const B: Xyxy = [100, 0, 110, 10];
const insideA = (h: number): Xyxy => [0, 0, 10, h];

describe('clearMot', () => {
  it('toy case: 3 frames, 2 GT, one miss, one ID switch, one fragmentation (hand-computed)', () => {
    const frames: EvalFrame[] = [
      // a–1 (IoU 1), b–2 (IoU 1)
      { gt: [{ id: 1, xyxy: A }, { id: 2, xyxy: B }], hyp: [{ id: 1, xyxy: A }, { id: 2, xyxy: B }] },
      // a–1 (IoU 0.6); b has no hypothesis: 1 miss, and b's tracked run ends
      { gt: [{ id: 1, xyxy: A }, { id: 2, xyxy: B }], hyp: [{ id: 1, xyxy: insideA(6) }] },
      // a–1; b–3: b was last matched to 2, so 1 ID switch; b tracked again: a second run, 1 fragmentation
      { gt: [{ id: 1, xyxy: A }, { id: 2, xyxy: B }], hyp: [{ id: 1, xyxy: A }, { id: 3, xyxy: B }] },
    ];
    const r = clearMot(frames);
    expect(r).toMatchObject({ gtCount: 6, hypCount: 5, matches: 5, misses: 1, falsePositives: 0, idSwitches: 1, fragmentations: 1 });
    // MOTA = 1 − (FN + FP + IDSW) / GT = 1 − (1 + 0 + 1) / 6 = 2/3
    expect(r.mota).toBeCloseTo(2 / 3, 12);
    // MOTP = mean IoU of the 5 matches = (1 + 1 + 0.6 + 1 + 1) / 5 = 0.92
    expect(r.motpIou).toBeCloseTo(0.92, 12);
    // a matched 3/3 frames (> 80 %): mostly tracked; b 2/3 (20–80 %): partially tracked
    expect(r).toMatchObject({ mostlyTracked: 1, partiallyTracked: 1, mostlyLost: 0 });
  });

  it("keeps last frame's correspondence while its IoU ≥ 0.5, even when another hypothesis overlaps better", () => {
    const frames: EvalFrame[] = [
      // a–1 (IoU 0.9)
      { gt: [{ id: 1, xyxy: A }], hyp: [{ id: 1, xyxy: insideA(9) }] },
      // 1 still overlaps 0.6 ≥ 0.5: kept, although 2 overlaps 0.8; 2 is a false positive, no switch
      { gt: [{ id: 1, xyxy: A }], hyp: [{ id: 1, xyxy: insideA(6) }, { id: 2, xyxy: insideA(8) }] },
      // 1 drops to 0.4 < 0.5: correspondence broken, a–2 (0.8) is a new one: 1 ID switch; 1 is a false positive
      { gt: [{ id: 1, xyxy: A }], hyp: [{ id: 1, xyxy: insideA(4) }, { id: 2, xyxy: insideA(8) }] },
    ];
    const r = clearMot(frames);
    expect(r).toMatchObject({ gtCount: 3, matches: 3, misses: 0, falsePositives: 2, idSwitches: 1, fragmentations: 0 });
    // MOTA = 1 − (0 + 2 + 1) / 3 = 0; MOTP = (0.9 + 0.6 + 0.8) / 3
    expect(r.mota).toBeCloseTo(0, 12);
    expect(r.motpIou).toBeCloseTo(2.3 / 3, 12);
  });

  it('assigns a frame optimally (most matches), not greedily by best IoU', () => {
    // IoU(a, 1) = 9/10 = 0.9, IoU(a, 2) = 8/14 ≈ 0.571, IoU(b, 1) = 7/11 ≈ 0.636, IoU(b, 2) = 6/15 = 0.4.
    // Greedy takes a–1 (best), and b is left with 2 (0.4 < 0.5): 1 match. Optimal: a–2 and b–1, 2 matches.
    const frames: EvalFrame[] = [
      { gt: [{ id: 1, xyxy: span(0, 10) }, { id: 2, xyxy: span(2, 11) }], hyp: [{ id: 1, xyxy: span(0, 9) }, { id: 2, xyxy: span(-4, 8) }] },
    ];
    const r = clearMot(frames);
    expect(r).toMatchObject({ matches: 2, misses: 0, falsePositives: 0, mota: 1 });
    expect(r.motpIou).toBeCloseTo((8 / 14 + 7 / 11) / 2, 12);
  });

  it('counts an ID switch against the last match at any earlier frame, and a gap as a fragmentation', () => {
    const frames: EvalFrame[] = [
      { gt: [{ id: 1, xyxy: A }], hyp: [{ id: 1, xyxy: A }] },
      // Nothing output: 1 miss; the run ends (TrackEval skips frames without hypotheses and would not end it)
      { gt: [{ id: 1, xyxy: A }], hyp: [] },
      // Same id again after the gap: no switch, but a second run: 1 fragmentation
      { gt: [{ id: 1, xyxy: A }], hyp: [{ id: 1, xyxy: A }] },
      // Another id: 1 switch (against frame 3's match)
      { gt: [{ id: 1, xyxy: A }], hyp: [{ id: 2, xyxy: A }] },
    ];
    const r = clearMot(frames);
    expect(r).toMatchObject({ gtCount: 4, matches: 3, misses: 1, idSwitches: 1, fragmentations: 1 });
    // MOTA = 1 − (1 + 0 + 1) / 4 = 0.5
    expect(r.mota).toBeCloseTo(0.5, 12);
  });

  it("ends a GT's tracked run on a frame where it is not labelled (TrackEval's Frag)", () => {
    const both: EvalFrame = { gt: [{ id: 1, xyxy: A }, { id: 2, xyxy: B }], hyp: [{ id: 7, xyxy: A }, { id: 8, xyxy: B }] };
    const r = clearMot([both, { gt: [{ id: 2, xyxy: B }], hyp: [{ id: 8, xyxy: B }] }, both]);
    // Every GT box matched, no switch: MOTA 1; but GT 1 has two runs (frames 1 and 3): 1 fragmentation
    expect(r).toMatchObject({ gtCount: 5, misses: 0, falsePositives: 0, idSwitches: 0, fragmentations: 1, mota: 1 });
  });

  it('counts IoU exactly at the threshold as a match, and honours iouThreshold', () => {
    const at = (h: number): EvalFrame[] => [{ gt: [{ id: 1, xyxy: A }], hyp: [{ id: 1, xyxy: insideA(h) }] }];
    expect(clearMot(at(5)).matches).toBe(1); // IoU 0.5
    expect(clearMot(at(4.9)).matches).toBe(0); // IoU 0.49
    expect(clearMot(at(4.9), { iouThreshold: 0.3 }).matches).toBe(1);
    expect(clearMot(at(5), { iouThreshold: 0.7 }).matches).toBe(0);
  });

  it('perfect tracking scores MOTA 1 and MOTP 1 whatever the hypothesis ids are', () => {
    const frames: EvalFrame[] = Array.from({ length: 10 }, (_, t) => ({
      gt: [{ id: 1, xyxy: span(t, t + 10) }, { id: 2, xyxy: span(50 - t, 60 - t) }],
      hyp: [{ id: 42, xyxy: span(t, t + 10) }, { id: 7, xyxy: span(50 - t, 60 - t) }],
    }));
    expect(clearMot(frames)).toEqual({
      gtCount: 20, hypCount: 20, matches: 20, misses: 0, falsePositives: 0, idSwitches: 0, fragmentations: 0,
      mota: 1, motpIou: 1, mostlyTracked: 2, partiallyTracked: 0, mostlyLost: 0,
    });
  });

  it('handles empty inputs: MOTA is undefined (NaN) without ground truth', () => {
    for (const frames of [[], [{ gt: [], hyp: [] }]]) {
      const r = clearMot(frames);
      expect(r).toMatchObject({ gtCount: 0, hypCount: 0, matches: 0, misses: 0, falsePositives: 0, idSwitches: 0, fragmentations: 0 });
      expect(r.mota).toBeNaN();
      expect(r.motpIou).toBeNaN();
    }
    const onlyHyp = clearMot([{ gt: [], hyp: [{ id: 1, xyxy: A }] }]);
    expect(onlyHyp).toMatchObject({ falsePositives: 1, mota: Number.NaN });
    // Only ground truth: MOTA = 1 − 2 / 2 = 0
    const onlyGt = clearMot([{ gt: [{ id: 1, xyxy: A }], hyp: [] }, { gt: [{ id: 1, xyxy: A }], hyp: [] }]);
    expect(onlyGt).toMatchObject({ misses: 2, mota: 0, mostlyLost: 1 });
  });

  it('rejects a frame that repeats an id', () => {
    expect(() => clearMot([{ gt: [{ id: 1, xyxy: A }, { id: 1, xyxy: B }], hyp: [] }])).toThrow(/frame 0: gt id 1 appears twice/);
    expect(() => clearMot([{ gt: [], hyp: [{ id: 3, xyxy: A }, { id: 3, xyxy: B }] }])).toThrow(/hyp id 3/);
  });
});
