import type { Observable, Subscription } from 'rxjs';

/** An async iterable over a hot stream whose buffer is bounded; `dropped` counts what the bound discarded. */
export interface BufferedIterable<T> extends AsyncIterable<T> {
  /** Values discarded (oldest first) because the consumer was more than `maxBuffered` values behind. */
  readonly dropped: number;
}

/** Options of toAsyncIterable. */
export interface ToAsyncIterableOptions {
  /** Values held for a consumer that is behind; beyond this the oldest is dropped. Default 1024. */
  maxBuffered?: number;
}

/**
 * Turns a hot Observable into an async iterable for one consumer. It subscribes at once (values emitted before
 * the first `next()` are kept, the stream does not wait), buffers at most `maxBuffered` values and then drops the
 * oldest (counted in `dropped`): a consumer that falls behind costs a bounded amount of memory and sees the newest
 * values. It unsubscribes as soon as the consumer stops (`break`, `return`, a throw in the loop body) or the
 * stream ends; an error is thrown after the values buffered before it.
 */
export function toAsyncIterable<T>(source$: Observable<T>, options: ToAsyncIterableOptions = {}): BufferedIterable<T> {
  const maxBuffered = options.maxBuffered ?? 1024;
  if (!Number.isInteger(maxBuffered) || maxBuffered < 1) throw new RangeError(`maxBuffered must be an integer ≥ 1, got ${maxBuffered}`);
  const buffer = new RingBuffer<T>(maxBuffered);
  let dropped = 0;
  let ended = false;
  let failed = false;
  let failure: unknown;
  // Every pending next() (a consumer may call it again before the last one settled) waits here.
  let waiters: (() => void)[] = [];
  const notify = (): void => {
    const woken = waiters;
    waiters = [];
    for (const wake of woken) wake();
  };

  // Still undefined while subscribe() runs: a source that ends inside it sets `ended`, checked just after.
  let subscription: Subscription | undefined = undefined;
  const stop = (): void => {
    ended = true;
    subscription?.unsubscribe();
    notify();
  };
  subscription = source$.subscribe({
    next: (v) => {
      if (!buffer.push(v)) dropped++;
      notify();
    },
    error: (e: unknown) => {
      failure = e;
      failed = true;
      stop();
    },
    complete: stop,
  });
  if (ended) subscription.unsubscribe();

  const iterator: AsyncIterator<T> = {
    async next(): Promise<IteratorResult<T>> {
      for (;;) {
        if (buffer.length > 0) return { done: false, value: buffer.shift() };
        if (failed) {
          // Thrown once; later next() calls just report the end.
          failed = false;
          throw failure;
        }
        if (ended) return { done: true, value: undefined };
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    // The consumer stopped early: let go of the stream and of everything buffered.
    async return(): Promise<IteratorResult<T>> {
      failed = false;
      buffer.clear();
      stop();
      return { done: true, value: undefined };
    },
  };
  return {
    get dropped() {
      return dropped;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
}

/** A fixed-capacity FIFO that overwrites its oldest value when full (O(1) push and shift). */
class RingBuffer<T> {
  private readonly slots: (T | undefined)[];
  private head = 0;
  length = 0;

  constructor(private readonly capacity: number) {
    this.slots = new Array<T | undefined>(capacity);
  }

  /** Appends; returns false when this overwrote the oldest value. */
  push(value: T): boolean {
    const full = this.length === this.capacity;
    this.slots[(this.head + this.length) % this.capacity] = value;
    if (full) this.head = (this.head + 1) % this.capacity;
    else this.length++;
    return !full;
  }

  /** Removes the oldest value; call only when length > 0. */
  shift(): T {
    const value = this.slots[this.head] as T;
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.length--;
    return value;
  }

  clear(): void {
    this.slots.fill(undefined);
    this.head = 0;
    this.length = 0;
  }
}
