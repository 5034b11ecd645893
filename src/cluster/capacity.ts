/**
 * What cameras a worker may run at once: a number of cameras, or a frame rate it sustains on the model (measured
 * by the user, e.g. with `visionpipe run` on one camera). File jobs have their own slots (`--file-jobs`, BullMQ's
 * concurrency), since a file has no fixed rate: it takes what the cameras leave.
 */
export type CapacitySpec = { unit: 'cameras'; total: number } | { unit: 'fps'; total: number };

/**
 * Capacity accounting of one worker's cameras. Under `cameras` a camera takes 1; under `fps` it takes its fps. A
 * camera that does not fit is handed back to the queue for another worker. Pure (no I/O), tested alone.
 */
export class Capacity {
  readonly #held = new Map<string, number>();

  constructor(readonly spec: CapacitySpec) {
    if (!(spec.total > 0)) throw new RangeError(`capacity must be > 0, got ${spec.total}`);
  }

  /** The cost of a camera whose desired fps is `fps`. */
  cameraCost(fps: number): number {
    return this.spec.unit === 'cameras' ? 1 : fps;
  }

  get used(): number {
    let sum = 0;
    for (const cost of this.#held.values()) sum += cost;
    return sum;
  }

  get free(): number {
    return Math.max(0, this.spec.total - this.used);
  }

  /**
   * Takes `cost` for `key` when it fits; false (nothing taken) otherwise. A camera costing more than the whole
   * capacity fits only on an idle worker, so that it runs somewhere instead of nowhere.
   */
  tryReserve(key: string, cost: number): boolean {
    if (this.#held.has(key)) throw new Error(`capacity: ${key} already holds capacity`);
    const fits = this.used + cost <= this.spec.total + 1e-9 || (this.#held.size === 0 && cost > this.spec.total);
    if (fits) this.#held.set(key, cost);
    return fits;
  }

  release(key: string): void {
    this.#held.delete(key);
  }

  /**
   * BullMQ concurrency for the camera queue: exactly the capacity under `cameras` (so no camera is ever taken and
   * handed back), and a bound under `fps` (where tryReserve decides).
   */
  maxCameras(): number {
    return this.spec.unit === 'cameras' ? this.spec.total : Math.max(1, Math.min(64, Math.ceil(this.spec.total)));
  }
}
