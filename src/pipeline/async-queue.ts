import type { Observable } from 'rxjs';

/** Turns a hot Observable into an async iterable that buffers what the consumer has not taken yet. */
export function toAsyncIterable<T>(source$: Observable<T>): AsyncIterable<T> {
  const queue: T[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let failure: unknown;
  let failed = false;
  source$.subscribe({
    next: (v) => (queue.push(v), wake?.()),
    error: (e: unknown) => ((failure = e), (failed = true), (ended = true), wake?.()),
    complete: () => ((ended = true), wake?.()),
  });
  return {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const next = queue.shift();
        if (next !== undefined) yield next;
        else if (failed) throw failure;
        else if (ended) return;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}
