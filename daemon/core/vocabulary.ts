// The words vigild uses for workers, programs and itself, in one place. Each
// list is the set of label values of a metric, of strings on D-Bus and in
// vigilctl, of fields in the last-shutdown report and of values the
// configuration accepts, so a word added here appears everywhere at once.
//
// What must change together:
// - A new worker phase needs a line in workerStateLabel() (the compiler
//   insists) and, if it is a new kind of waiting, a deadline in
//   worker/lifecycle.ts.
// - A new outcome or restart reason is a new label value of
//   vigil_worker_shutdown_seconds / vigil_worker_restarts_total: the alert
//   rules and dashboard under monitoring/ and the README's metrics table.
// - A new worker state label is a new value of vigil_workers{state} and of
//   vigilctl status's STATE column: the same two places.
import { SHUTDOWN_REASONS, TEARDOWN_MODES, type ShutdownReason, type TeardownMode } from "../../lib/protocol/index.js";

export { SHUTDOWN_REASONS, TEARDOWN_MODES, type ShutdownReason, type TeardownMode };

/** A worker process's life, as worker/lifecycle.ts steps it. */
export const WORKER_PHASES = ["starting", "running", "dumping", "handlers", "teardown", "killing", "exited"] as const;
export type WorkerPhase = (typeof WORKER_PHASES)[number];

/** unknown: protocol auto and silent so far; plain: never speaks; protocol: speaks. */
export type WorkerKind = "unknown" | "plain" | "protocol";

/** Where a worker was seen hanging; signal: a plain worker ignored its stop signal. */
export const HANG_PHASES = ["running", "handlers", "teardown", "signal"] as const;
export type HangPhase = (typeof HANG_PHASES)[number];

/** Why a hung worker is being killed outside a stop. */
export type FaultCause = "heartbeat" | "ready-timeout";

/** How a stop ended; unkillable: still there after SIGKILL (uninterruptible sleep), vigild stopped waiting. */
export const OUTCOMES = ["clean", "skipped", "forced", "unkillable"] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const RESTART_REASONS = ["exit", "crash", "oom", "hang", "recycle", "reload", "restart"] as const;
export type RestartReason = (typeof RESTART_REASONS)[number];

/** The replacements vigild itself decides on; each is both a stop reason and a restart reason. */
export type ReplaceReason = Extract<ShutdownReason & RestartReason, "restart" | "reload" | "recycle">;

export const RESTART_POLICIES = ["always", "on-failure", "never"] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

/** auto: plain until the worker writes on the socket; on: must say ready; off: no socket at all. */
export const PROTOCOL_MODES = ["auto", "on", "off"] as const;
export type ProtocolMode = (typeof PROTOCOL_MODES)[number];

/** teardown: auto starts as destroy and switches a program to skip at its first teardown hang. */
export const TEARDOWN_SETTINGS = [...TEARDOWN_MODES, "auto"] as const;
export type TeardownSetting = (typeof TEARDOWN_SETTINGS)[number];

export const PROGRAM_STATES = ["starting", "running", "stopping", "stopped", "failed"] as const;
export type ProgramStateName = (typeof PROGRAM_STATES)[number];

export const DAEMON_STATES = ["starting", "running", "reloading", "stopping", "forcing", "stopped"] as const;
export type DaemonStateName = (typeof DAEMON_STATES)[number];

/**
 * A worker slot as operators see it (vigil_workers{state}, vigilctl status):
 * a live worker by its phase; an empty slot as backoff (restart pending),
 * failed (the program gave up) or stopped (ended and left down: restart
 * policy, or vigild is stopping).
 */
export const WORKER_STATES = ["starting", "running", "hung", "stopping", "killing", "backoff", "failed", "stopped"] as const;
export type WorkerStateLabel = (typeof WORKER_STATES)[number];

/** The label of a live worker; null once it has exited (its slot speaks for it then). */
export function workerStateLabel(phase: WorkerPhase): WorkerStateLabel | null {
  switch (phase) {
    case "starting":
      return "starting";
    case "running":
      return "running";
    case "dumping":
      return "hung";
    case "handlers":
    case "teardown":
      return "stopping";
    case "killing":
      return "killing";
    case "exited":
      return null;
  }
}

/** The label of a slot with no live worker. */
export function emptySlotLabel(backoff: boolean, programState: ProgramStateName): WorkerStateLabel {
  if (backoff) return "backoff";
  return programState === "failed" ? "failed" : "stopped";
}
