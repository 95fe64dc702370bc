// Events handled one at a time. An event raised while another is being
// handled (by the effects of its own step) waits its turn, so a step never
// runs inside another one, on a state that is still being changed.
export class Serial<E> {
  private readonly queue: E[] = [];
  private running = false;

  constructor(
    private readonly handle: (event: E) => void,
    /** Runs once the queue is empty (re-arm a timer, settle waiters). */
    private readonly after: () => void = () => undefined,
  ) {}

  push(event: E): void {
    this.queue.push(event);
    if (this.running) return;
    this.running = true;
    try {
      for (let next = this.queue.shift(); next !== undefined; next = this.queue.shift()) this.handle(next);
    } finally {
      this.running = false;
    }
    this.after();
  }
}
