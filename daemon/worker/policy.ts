// Decisions about workers as plain functions over data: no I/O, no timers,
// no logging. The names of outcomes and reasons are in core/vocabulary.ts.
import type { RestartConfig } from "../config/types.js";
import type { ShutdownDurations } from "../core/record.js";
import type { Outcome, RestartPolicy, RestartReason } from "../core/vocabulary.js";
import type { WorkerState } from "./lifecycle.js";

/** How a stopped worker's stop ended; null for a worker nobody asked to stop. */
export function classifyShutdown(state: WorkerState): Outcome | null {
  // A worker that never ran (spawn failed) has no stop to classify.
  if (state.t.stopRequestedAt === null || state.phase !== "exited" || state.exit?.error != null) return null;
  if (state.unkillable) return "unkillable";
  if (state.forced) return "forced";
  if (state.stop?.teardown === "skip" && (state.t.handlersDoneAt !== null || state.killedForSkip)) return "skipped";
  return "clean";
}

/** A SIGKILL that vigild did not send: the OOM killer, or someone with kill -9. */
export function killedFromOutside(state: WorkerState): boolean {
  return state.exit?.signal === "SIGKILL" && state.t.killedAt === null;
}

/** Why a worker that vigild did not ask to stop has ended. */
export function unexpectedEndReason(state: WorkerState, oomKilled = false): RestartReason {
  if (state.fault !== null) return "hang";
  if (oomKilled && killedFromOutside(state)) return "oom";
  const exit = state.exit;
  if (exit && exit.error === null && exit.signal === null && exit.code === 0) return "exit";
  return "crash";
}

export function shouldRestart(policy: RestartPolicy, reason: RestartReason): boolean {
  switch (policy) {
    case "always":
      return true;
    case "on-failure":
      return reason !== "exit";
    case "never":
      return false;
  }
}

/** Exponential backoff: initial, 2x, 4x, ... capped at max. `failures` counts from 1. */
export function nextRestartDelay(failures: number, cfg: Pick<RestartConfig, "backoffInitialMs" | "backoffMaxMs">): number {
  if (failures <= 0) return 0;
  const exponent = Math.min(failures - 1, 52);
  return Math.min(cfg.backoffMaxMs, cfg.backoffInitialMs * 2 ** exponent);
}

/** A worker that stayed up longer than backoff_max ran well: its backoff starts over. */
export function ranWell(state: WorkerState, backoffMaxMs: number): boolean {
  const end = state.t.exitedAt;
  return state.t.readyAt !== null && end !== null && end - state.t.readyAt >= backoffMaxMs;
}

/** Restart times still inside the limit's window, oldest first. */
export function pruneRestarts(history: readonly number[], now: number, windowMs: number): number[] {
  return history.filter((at) => now - at < windowMs);
}

/** True when one more restart at `now` would exceed `limit.count` within `limit.windowMs`. */
export function restartLimitHit(history: readonly number[], now: number, limit: RestartConfig["limit"]): boolean {
  return pruneRestarts(history, now, limit.windowMs).length + 1 > limit.count;
}

/** Phase durations that fall out of the recorded transitions. */
export function shutdownDurations(state: WorkerState): ShutdownDurations {
  const { stopRequestedAt, handlersDoneAt, teardownAt, exitedAt } = state.t;
  const teardownStart = teardownAt ?? handlersDoneAt;
  return {
    totalMs: stopRequestedAt !== null && exitedAt !== null ? exitedAt - stopRequestedAt : null,
    handlersMs: stopRequestedAt !== null && handlersDoneAt !== null ? handlersDoneAt - stopRequestedAt : null,
    teardownMs:
      teardownStart !== null && exitedAt !== null && state.stop?.teardown === "destroy" ? exitedAt - teardownStart : null,
  };
}
