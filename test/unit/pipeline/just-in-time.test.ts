import { firstValueFrom, take, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { readFrames } from '../../../src/pipeline/operators/read-frames.js';
import { Permits } from '../../../src/pipeline/permits.js';
import { CountingSource } from '../../helpers/fakes.js';

describe('readFrames with a just-in-time wait (live sources)', () => {
  it('takes the permit, then waits, and only then reads: the frame taken is the one current when the wait ends', async () => {
    const source = new CountingSource(10);
    const permits = new Permits(2);
    const events: string[] = [];
    let open: () => void = () => undefined;
    const beforeRead = () => {
      events.push(`wait (reads so far: ${source.reads}, permits in use: ${permits.inUse})`);
      return new Promise<void>((resolve) => (open = resolve));
    };
    const two = firstValueFrom(readFrames(source, permits, null, { stopRequested: false }, undefined, beforeRead).pipe(take(2), toArray()));
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual(['wait (reads so far: 0, permits in use: 1)']);
    expect(source.reads).toBe(0); // nothing read while waiting, though a permit is held
    open();
    await new Promise((r) => setImmediate(r));
    expect(source.reads).toBe(1);
    expect(events).toHaveLength(2); // the second frame waits in its turn
    open();
    const frames = await two;
    expect(frames.map((f) => f.index)).toEqual([0, 1]);
    frames.forEach((f) => f.mat.release());
  });

  it('a stop requested during the wait reads nothing more and gives the permit back', async () => {
    const source = new CountingSource(10);
    const permits = new Permits(1);
    const control = { stopRequested: false };
    const done = firstValueFrom(
      readFrames(source, permits, null, control, undefined, async () => {
        control.stopRequested = true;
      }).pipe(toArray()),
    );
    expect(await done).toEqual([]);
    expect(source.reads).toBe(0);
    expect(permits.inUse).toBe(0);
  });
});
