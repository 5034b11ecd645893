/**
 * A counting semaphore with FIFO waiters: the pipeline's in-flight bound. A file source awaits a permit before
 * reading the next frame, so a slow stage anywhere downstream makes reading wait instead of queueing frames.
 */
export class Permits {
  private available: number;
  private readonly waiters: Array<() => void> = [];
  private closed = false;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be ≥ 1, got ${capacity}`);
    this.available = capacity;
  }

  /** Resolves once a permit is held; rejects if the permits are closed while waiting. */
  acquire(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('permits closed'));
    if (this.available > 0) {
      this.available--;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.waiters.push(() => (this.closed ? reject(new Error('permits closed')) : resolve()));
    });
  }

  /** Takes a permit only if one is free now. */
  tryAcquire(): boolean {
    if (this.closed || this.available === 0) return false;
    this.available--;
    return true;
  }

  release(): void {
    const next = this.waiters.shift();
    if (next !== undefined) next();
    else if (this.available < this.capacity) this.available++;
    else throw new Error('Permits.release called more often than acquire');
  }

  /** Permits held right now. */
  get inUse(): number {
    return this.capacity - this.available;
  }

  /** Wakes every waiter with a rejection; later acquires reject too. */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}
