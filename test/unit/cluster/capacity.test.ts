import { describe, expect, it } from 'vitest';
import { Capacity } from '../../../src/cluster/capacity.js';

describe('Capacity: what a worker may take', () => {
  it('cameras: one slot per camera, whatever its fps; a full worker takes none', () => {
    const c = new Capacity({ unit: 'cameras', total: 2 });
    expect(c.maxCameras()).toBe(2);
    expect(c.tryReserve('a', c.cameraCost(25))).toBe(true);
    expect(c.tryReserve('b', c.cameraCost(1))).toBe(true);
    expect(c.tryReserve('c', c.cameraCost(1))).toBe(false);
    expect(c.used).toBe(2);
    c.release('a');
    expect(c.free).toBe(1);
    expect(c.tryReserve('c', 1)).toBe(true);
  });

  it('fps: a camera costs its fps; the sum stays within the budget', () => {
    const c = new Capacity({ unit: 'fps', total: 12 });
    expect(c.tryReserve('a', c.cameraCost(5))).toBe(true);
    expect(c.tryReserve('b', c.cameraCost(5))).toBe(true);
    expect(c.tryReserve('c', c.cameraCost(5))).toBe(false); // 15 > 12
    expect(c.tryReserve('d', c.cameraCost(2))).toBe(true); // exactly 12
    expect(c.used).toBe(12);
    expect(c.free).toBe(0);
  });

  it('a camera larger than the whole budget runs on an idle worker only (somewhere rather than nowhere)', () => {
    const c = new Capacity({ unit: 'fps', total: 4 });
    expect(c.tryReserve('big', 10)).toBe(true);
    expect(c.tryReserve('small', 1)).toBe(false);
    c.release('big');
    expect(c.tryReserve('small', 1)).toBe(true);
    expect(c.tryReserve('big', 10)).toBe(false);
  });

  it('refuses a key twice and a capacity of 0', () => {
    const c = new Capacity({ unit: 'cameras', total: 1 });
    c.tryReserve('a', 1);
    expect(() => c.tryReserve('a', 1)).toThrow(/already/);
    expect(() => new Capacity({ unit: 'fps', total: 0 })).toThrow(RangeError);
  });
});
