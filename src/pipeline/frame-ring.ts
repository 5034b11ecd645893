/**
 * The ring of preallocated model-input buffers between preprocessing (main thread) and inference (worker).
 *
 * Each slot owns one ArrayBuffer. Preprocessing fills a free slot; the buffer is then *transferred* to the worker
 * (zero copies; onnxruntime-node refuses SharedArrayBuffer-backed tensors) and comes back, transferred again, when
 * inference is done with it. A slot is reusable only after that release, so a buffer still being read by the
 * worker can never be overwritten. With two slots this is double buffering: frame N+1 is preprocessed into one
 * slot while the worker reads frame N from the other.
 */

export type SlotState = 'free' | 'filling' | 'inference';

export interface RingSlot {
  readonly id: number;
  /** Present while the main thread owns the buffer (free / filling); null while lent to the worker. */
  buffer: ArrayBuffer | null;
  state: SlotState;
  /** How many times the slot has been handed out: lets tests prove reuse only after release. */
  generation: number;
}

export class FrameRing {
  private readonly slots: RingSlot[];
  private readonly waiters: Array<(slot: RingSlot) => void> = [];
  /** Times `acquire` had to wait for a slot (the backpressure signal). */
  waits = 0;

  constructor(
    readonly slotCount: number,
    readonly slotByteLength: number,
  ) {
    if (!Number.isInteger(slotCount) || slotCount < 1) throw new RangeError(`slotCount must be ≥ 1, got ${slotCount}`);
    this.slots = Array.from({ length: slotCount }, (_, id) => ({
      id,
      buffer: new ArrayBuffer(slotByteLength),
      state: 'free' as SlotState,
      generation: 0,
    }));
  }

  /** A free slot, now marked `filling`; waits (FIFO) when every slot is in use. */
  acquire(): Promise<RingSlot> {
    const slot = this.takeFree();
    if (slot !== undefined) return Promise.resolve(slot);
    this.waits++;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** A free slot if there is one now, else undefined (live sources drop instead of waiting). */
  tryAcquire(): RingSlot | undefined {
    return this.takeFree();
  }

  /** Detaches the filled slot's buffer for transfer to the worker. */
  lend(slot: RingSlot): ArrayBuffer {
    this.expect(slot, 'filling', 'lend');
    const buffer = slot.buffer;
    if (buffer === null) throw new Error(`ring slot ${slot.id} has no buffer to lend`);
    slot.buffer = null;
    slot.state = 'inference';
    return buffer;
  }

  /** The worker is done with the slot: takes the buffer back and frees (or directly hands over) the slot. */
  giveBack(slotId: number, buffer: ArrayBuffer): void {
    const slot = this.slots[slotId];
    if (slot === undefined) throw new Error(`no ring slot ${slotId}`);
    this.expect(slot, 'inference', 'give back');
    if (buffer.byteLength !== this.slotByteLength) {
      throw new Error(`ring slot ${slotId} came back with ${buffer.byteLength} bytes, expected ${this.slotByteLength}`);
    }
    slot.buffer = buffer;
    this.free(slot);
  }

  /** Returns a slot that was acquired but not lent (e.g. preprocessing failed or the frame was dropped). */
  abandon(slot: RingSlot): void {
    this.expect(slot, 'filling', 'abandon');
    this.free(slot);
  }

  /**
   * After a failed run: frees a slot whose buffer the worker never gave back (it crashed, or refused the run
   * before taking the buffer), with a new buffer, so the ring keeps its size. `generation` is the slot's when the
   * failed run took it: a slot given back since and handed to another frame (a newer generation) is that frame's now,
   * and is left alone, as is a slot already given back and free.
   */
  reclaim(slot: RingSlot, generation: number): void {
    if (slot.generation !== generation) return;
    if (slot.state === 'filling') this.free(slot);
    if (slot.state !== 'inference') return;
    slot.buffer = new ArrayBuffer(this.slotByteLength);
    this.free(slot);
  }

  /** Slots not free right now. */
  get inUse(): number {
    return this.slots.filter((s) => s.state !== 'free').length;
  }

  private free(slot: RingSlot): void {
    slot.state = 'free';
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter(this.hand(slot));
  }

  private takeFree(): RingSlot | undefined {
    const slot = this.slots.find((s) => s.state === 'free');
    return slot === undefined ? undefined : this.hand(slot);
  }

  private hand(slot: RingSlot): RingSlot {
    slot.state = 'filling';
    slot.generation++;
    return slot;
  }

  private expect(slot: RingSlot, state: SlotState, action: string): void {
    if (slot.state !== state) throw new Error(`cannot ${action} ring slot ${slot.id}: it is ${slot.state}, not ${state}`);
  }
}
