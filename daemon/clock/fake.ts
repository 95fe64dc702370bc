// A clock for tests: time moves only when the test says so, and timers fire
// in deadline order, each seeing `now()` equal to its own deadline.
import type { Clock, TimerHandle } from "./clock.js";

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class FakeClock implements Clock {
  private current: number;
  private seq = 0;
  private pending: Pending[] = [];

  constructor(startMs = 1_000_000) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  wallNow(): Date {
    return new Date(Date.UTC(2026, 0, 1) + this.current);
  }

  at(atMs: number, fn: () => void): TimerHandle {
    const entry: Pending = { at: Math.max(atMs, this.current), seq: this.seq++, fn, cancelled: false };
    this.pending.push(entry);
    return { cancel: () => void (entry.cancelled = true) };
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      this.pending = this.pending.filter((p) => !p.cancelled);
      const next = this.pending.reduce<Pending | null>(
        (best, p) => (p.at <= target && (!best || p.at < best.at || (p.at === best.at && p.seq < best.seq)) ? p : best),
        null,
      );
      if (!next) break;
      this.current = next.at;
      next.cancelled = true;
      next.fn();
    }
    this.current = target;
  }

  get pendingCount(): number {
    return this.pending.filter((p) => !p.cancelled).length;
  }
}
