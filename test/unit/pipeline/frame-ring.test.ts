import { describe, expect, it } from 'vitest';
import { FrameRing } from '../../../src/pipeline/frame-ring.js';

describe('FrameRing', () => {
  it('hands out each slot once until it is given back', async () => {
    const ring = new FrameRing(2, 16);
    const a = await ring.acquire();
    const b = await ring.acquire();
    expect(new Set([a.id, b.id]).size).toBe(2);
    expect(ring.tryAcquire()).toBeUndefined();
    expect(ring.inUse).toBe(2);
  });

  it('makes acquire wait while every slot is lent, and wakes it on give-back', async () => {
    const ring = new FrameRing(1, 8);
    const slot = await ring.acquire();
    const lent = ring.lend(slot);
    let got = false;
    const next = ring.acquire().then((s) => ((got = true), s));
    await Promise.resolve();
    expect(got).toBe(false);
    expect(ring.waits).toBe(1);
    ring.giveBack(slot.id, lent);
    const again = await next;
    expect(again.id).toBe(slot.id);
    expect(again.generation).toBe(2);
    expect(again.buffer).toBe(lent);
  });

  it('detaches the buffer while lent so nothing can write into it', async () => {
    const ring = new FrameRing(2, 8);
    const slot = await ring.acquire();
    ring.lend(slot);
    expect(slot.buffer).toBeNull();
    expect(slot.state).toBe('inference');
  });

  it.each([
    ['lending a slot twice', (ring: FrameRing, id: number, buf: ArrayBuffer) => ring.lend({ id, buffer: buf, state: 'inference', generation: 1 })],
    ['giving back a free slot', (ring: FrameRing, id: number, buf: ArrayBuffer) => (ring.giveBack(id, buf), ring.giveBack(id, buf))],
    ['giving back a buffer of the wrong size', (ring: FrameRing, id: number) => ring.giveBack(id, new ArrayBuffer(3))],
    ['giving back an unknown slot', (ring: FrameRing, _id: number, buf: ArrayBuffer) => ring.giveBack(99, buf)],
  ])('rejects %s', async (_name, misuse) => {
    const ring = new FrameRing(2, 8);
    const slot = await ring.acquire();
    const buf = ring.lend(slot);
    expect(() => misuse(ring, slot.id, buf)).toThrow();
  });

  it('returns an abandoned slot to the pool', async () => {
    const ring = new FrameRing(1, 8);
    const slot = await ring.acquire();
    ring.abandon(slot);
    expect(ring.tryAcquire()?.id).toBe(slot.id);
  });

  it('after a failed run, reclaims only that use of the slot: one given back and handed to another frame stays that frame’s', async () => {
    const ring = new FrameRing(1, 8);
    const slot = await ring.acquire();
    const failedGeneration = slot.generation;
    const buf = ring.lend(slot);
    ring.giveBack(slot.id, buf); // the host gives the buffer back, then rejects the run…
    const next = await ring.acquire(); // …and meanwhile the slot went to the next frame
    expect(next).toBe(slot);
    ring.reclaim(slot, failedGeneration); // the failed run's clean-up
    expect(slot.state).toBe('filling');
    expect(ring.tryAcquire()).toBeUndefined(); // not handed to a second owner
    expect(() => ring.lend(next)).not.toThrow();
  });

  it('reclaims a slot whose buffer never came back (a crashed worker) with a fresh buffer', async () => {
    const ring = new FrameRing(1, 8);
    const slot = await ring.acquire();
    const generation = slot.generation;
    ring.lend(slot);
    ring.reclaim(slot, generation);
    expect(slot.state).toBe('free');
    expect(slot.buffer?.byteLength).toBe(8);
  });
});

