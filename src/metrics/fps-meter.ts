/** Frames per second over a sliding window of the last `window` frame times. */
export class FpsMeter {
  private readonly times: number[] = [];

  constructor(private readonly window = 30) {}

  /** Records a frame at `nowMs` and returns the current rate (0 until two frames were seen). */
  tick(nowMs: number): number {
    this.times.push(nowMs);
    if (this.times.length > this.window) this.times.shift();
    const first = this.times[0] ?? nowMs;
    const spanMs = nowMs - first;
    return spanMs > 0 ? ((this.times.length - 1) * 1000) / spanMs : 0;
  }
}
