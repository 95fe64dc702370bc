// The one timer an edge keeps on its state machine's deadline: re-armed only
// when the deadline moves, so a step that leaves it alone costs nothing, and
// a timer that fired is spent whatever the state then decides.
import type { Clock, TimerHandle } from "./clock.js";

export class DeadlineTimer {
  private timer: TimerHandle | null = null;
  private at: number | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly fire: () => void,
  ) {}

  /** Fire at `at`; null disarms. */
  set(at: number | null): void {
    if (at === this.at) return;
    this.timer?.cancel();
    this.timer = null;
    this.at = at;
    if (at === null) return;
    this.timer = this.clock.at(at, () => {
      this.timer = null;
      this.at = null;
      this.fire();
    });
  }
}
