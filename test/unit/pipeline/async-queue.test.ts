import { Subject, of, throwError } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { toAsyncIterable } from '../../../src/pipeline/async-queue.js';

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of iterable) out.push(v);
  return out;
}

describe('toAsyncIterable', () => {
  it('keeps at most maxBuffered values, dropping the oldest and counting them', async () => {
    const subject = new Subject<number>();
    const iterable = toAsyncIterable(subject, { maxBuffered: 3 });
    for (let i = 0; i < 10; i++) subject.next(i);
    subject.complete();
    expect(iterable.dropped).toBe(7);
    expect(await collect(iterable)).toEqual([7, 8, 9]);
  });

  it('subscribes at once (a hot stream is buffered before the loop starts) and ends when the stream completes', async () => {
    const subject = new Subject<number>();
    const iterable = toAsyncIterable(subject);
    expect(subject.observed).toBe(true);
    subject.next(1);
    const done = collect(iterable);
    subject.next(2);
    await Promise.resolve();
    subject.next(3);
    subject.complete();
    expect(await done).toEqual([1, 2, 3]);
    expect(iterable.dropped).toBe(0);
    expect(subject.observed).toBe(false);
    // A stream that completes inside subscribe() works too.
    expect(await collect(toAsyncIterable(of('a', 'b')))).toEqual(['a', 'b']);
  });

  it('unsubscribes when the consumer breaks out of the loop, and drops what it buffered', async () => {
    const subject = new Subject<number>();
    const iterable = toAsyncIterable(subject);
    subject.next(1);
    subject.next(2);
    for await (const v of iterable) {
      expect(v).toBe(1);
      break;
    }
    expect(subject.observed).toBe(false);
    // Nothing more is buffered or delivered after the consumer left.
    subject.next(3);
    expect(await collect(iterable)).toEqual([]);
  });

  it('unsubscribes when the loop body throws', async () => {
    const subject = new Subject<number>();
    const iterable = toAsyncIterable(subject);
    setTimeout(() => subject.next(1), 1);
    await expect(
      (async () => {
        for await (const v of iterable) throw new Error(`consumer failed on ${v}`);
      })(),
    ).rejects.toThrow('consumer failed');
    expect(subject.observed).toBe(false);
  });

  it('delivers what was buffered, then throws the stream error, once', async () => {
    const subject = new Subject<number>();
    const iterable = toAsyncIterable(subject);
    subject.next(1);
    const seen: number[] = [];
    const loop = (async () => {
      for await (const v of iterable) seen.push(v);
    })();
    subject.next(2);
    subject.error(new Error('source failed'));
    await expect(loop).rejects.toThrow('source failed');
    expect(seen).toEqual([1, 2]);
    expect(subject.observed).toBe(false);
    await expect(collect(toAsyncIterable(throwError(() => new Error('at once'))))).rejects.toThrow('at once');
  });

  it('wakes a consumer that is waiting when the stream ends, and rejects a bound under 1', async () => {
    const subject = new Subject<number>();
    const done = collect(toAsyncIterable(subject));
    await new Promise((r) => setTimeout(r, 5));
    subject.complete();
    expect(await done).toEqual([]);
    expect(() => toAsyncIterable(subject, { maxBuffered: 0 })).toThrow(RangeError);
  });
});
