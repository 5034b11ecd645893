import { describe, expect, it } from 'vitest';
import { Permits } from '../../../src/pipeline/permits.js';

describe('Permits', () => {
  it('bounds holders and serves waiters first-in first-out', async () => {
    const permits = new Permits(1);
    await permits.acquire();
    const order: number[] = [];
    const a = permits.acquire().then(() => order.push(1));
    const b = permits.acquire().then(() => order.push(2));
    permits.release();
    await a;
    permits.release();
    await b;
    expect(order).toEqual([1, 2]);
    expect(permits.inUse).toBe(1);
  });

  it('rejects waiters when closed and refuses extra releases', async () => {
    const permits = new Permits(1);
    expect(permits.tryAcquire()).toBe(true);
    const waiting = permits.acquire();
    permits.close();
    await expect(waiting).rejects.toThrow('closed');
    const fresh = new Permits(1);
    expect(() => fresh.release()).toThrow();
  });
});
