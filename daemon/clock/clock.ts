// One place for time in vigild. Everything that measures or waits asks a
// Clock; production uses the monotonic clock, tests a fake one they advance.

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds on CLOCK_MONOTONIC (the clock workers write heartbeats with). */
  now(): number;
  /** Runs `fn` once at monotonic time `atMs` (at once if that has passed). */
  at(atMs: number, fn: () => void): TimerHandle;
  /**
   * Runs `fn` on the next turn of the event loop, after the I/O already
   * waiting (a message in a socket is read before `fn` judges a deadline).
   */
  defer(fn: () => void): void;
  /** Wall-clock time, only for timestamps that people read. */
  wallNow(): Date;
}

/** CLOCK_MONOTONIC as ms: process.hrtime is clock_gettime(CLOCK_MONOTONIC) on Linux. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

export const systemClock: Clock = {
  now: monotonicMs,
  at(atMs, fn) {
    // Node's timers count whole milliseconds on a coarser clock and can fire
    // up to 1 ms before atMs by hrtime; a deadline must never be seen early
    // (the state machine would ignore it and no timer would remain).
    let timer: NodeJS.Timeout;
    const fire = (): void => {
      const left = atMs - monotonicMs();
      if (left > 0) timer = setTimeout(fire, Math.ceil(left));
      else fn();
    };
    timer = setTimeout(fire, Math.max(0, Math.ceil(atMs - monotonicMs())));
    return { cancel: () => clearTimeout(timer) };
  },
  defer: (fn) => void setImmediate(fn),
  wallNow: () => new Date(),
};
