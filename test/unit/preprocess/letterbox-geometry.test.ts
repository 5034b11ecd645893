import { describe, expect, it } from 'vitest';
import { boxToFrame, planResize } from '../../../src/preprocess/letterbox-geometry.js';

describe('planResize', () => {
  it.each([
    { mode: 'stretch' as const, frame: [768, 576], input: [512, 512], resized: [512, 512], pad: [0, 0, 0, 0], crop: null },
    { mode: 'letterbox' as const, frame: [768, 576], input: [512, 512], resized: [512, 384], pad: [64, 64, 0, 0], crop: null },
    { mode: 'letterbox' as const, frame: [100, 200], input: [64, 64], resized: [32, 64], pad: [0, 0, 16, 16], crop: null },
    { mode: 'center-crop' as const, frame: [768, 576], input: [224, 224], resized: [299, 224], pad: [0, 0, 0, 0], crop: [37, 0, 224, 224] },
  ])('$mode $frame → $input', ({ mode, frame, input, resized, pad, crop }) => {
    const plan = planResize(mode, frame as [number, number], input as [number, number]);
    expect(plan.resizedWh).toEqual(resized);
    expect(plan.padTblr).toEqual(pad);
    expect(plan.cropXywh).toEqual(crop);
  });

  it.each(['stretch', 'letterbox', 'center-crop'] as const)('maps a box back to the frame for %s', (mode) => {
    const frameWh: [number, number] = [768, 576];
    const t = planResize(mode, frameWh, [512, 512]);
    const inFrame: [number, number, number, number] = [300, 200, 400, 380];
    const inInput = [
      inFrame[0] * t.scaleX + t.offsetX,
      inFrame[1] * t.scaleY + t.offsetY,
      inFrame[2] * t.scaleX + t.offsetX,
      inFrame[3] * t.scaleY + t.offsetY,
    ] as [number, number, number, number];
    boxToFrame(inInput, t, frameWh).forEach((v, i) => expect(v).toBeCloseTo(inFrame[i] ?? NaN, 6));
  });

  it('clips boxes to the frame', () => {
    const t = planResize('stretch', [100, 100], [100, 100]);
    expect(boxToFrame([-5, -5, 120, 50], t, [100, 100])).toEqual([0, 0, 100, 50]);
  });
});
