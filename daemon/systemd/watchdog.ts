// WATCHDOG=1 only while vigild is really healthy. Its own tick is one of the
// timers vigild runs anyway; how late it fires is the event-loop lag.
import type { Clock, TimerHandle } from "../clock/clock.js";

export interface HealthInput {
  /** How late this tick fired. */
  tickLateMs: number;
  /** How far past due the supervision timer (heartbeat monitor) is; 0 when it is not due. */
  supervisionOverdueMs: number;
  maxLoopLagMs: number;
}

export type Health = { ok: true } | { ok: false; why: string };

export function watchdogHealthy(input: HealthInput): Health {
  if (input.tickLateMs > input.maxLoopLagMs) {
    return { ok: false, why: `event loop lagged ${Math.round(input.tickLateMs)} ms (max_loop_lag ${input.maxLoopLagMs} ms)` };
  }
  if (input.supervisionOverdueMs > input.maxLoopLagMs) {
    return { ok: false, why: `supervision has not run for ${Math.round(input.supervisionOverdueMs)} ms past its deadline` };
  }
  return { ok: true };
}

export interface WatchdogDeps {
  clock: Clock;
  intervalMs: number;
  maxLoopLagMs: number;
  supervisionOverdueMs: () => number;
  ping: () => void;
  unhealthy: (why: string) => void;
  /** Every measured lateness, for vigil_event_loop_lag_seconds. */
  lag: (ms: number) => void;
}

export class Watchdog {
  private timer: TimerHandle | null = null;
  pings = 0;

  constructor(private readonly deps: WatchdogDeps) {}

  start(): void {
    this.schedule(this.deps.clock.now());
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  private schedule(from: number): void {
    // Half the interval, as sd_watchdog_enabled(3) advises.
    const at = from + this.deps.intervalMs / 2;
    this.timer = this.deps.clock.at(at, () => this.tick(at));
  }

  private tick(scheduledAt: number): void {
    const now = this.deps.clock.now();
    const late = Math.max(0, now - scheduledAt);
    this.deps.lag(late);
    const health = watchdogHealthy({
      tickLateMs: late,
      supervisionOverdueMs: this.deps.supervisionOverdueMs(),
      maxLoopLagMs: this.deps.maxLoopLagMs,
    });
    if (health.ok) {
      this.pings++;
      this.deps.ping();
    } else {
      this.deps.unhealthy(health.why);
    }
    this.schedule(now);
  }
}
