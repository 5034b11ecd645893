/**
 * Runs an async job one at a time. A request while it runs is not lost: the job runs once more after it (requests
 * in between coalesce into that one run). Delivery targets use it to "deliver what is in the outbox now".
 */
export class CoalescedRunner {
  #running = false;
  #again = false;

  constructor(private readonly job: () => Promise<void>) {}

  request(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    void this.job().finally(() => {
      this.#running = false;
      if (this.#again) {
        this.#again = false;
        this.request();
      }
    });
  }
}
