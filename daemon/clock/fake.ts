// A clock for tests: time moves only when the test says so, and timers fire
// in deadline order, each seeing `now()` equal to its own deadline. Deferred
// work runs when time is moved (advance(0) runs only that), before the next
// timer, as the next turn of the event loop would.
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
  private deferred: Array<() => void> = [];

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

  defer(fn: () => void): void {
    this.deferred.push(fn);
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      this.runDeferred();
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
    this.runDeferred();
  }

  private runDeferred(): void {
    while (this.deferred.length > 0) this.deferred.shift()!();
  }

  get pendingCount(): number {
    return this.pending.filter((p) => !p.cancelled).length + this.deferred.length;
  }
}
