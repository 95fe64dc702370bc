// What one worker's life leaves behind, as plain data: when each phase began,
// why it was asked to stop, and how long its stop took phase by phase. The
// worker lifecycle fills it in; events, the log, metrics and the
// last-shutdown report read it.
import type { ShutdownReason, TeardownMode } from "./vocabulary.js";

export interface Timeline {
  spawnedAt: number;
  readyAt: number | null;
  stopRequestedAt: number | null;
  handlersDoneAt: number | null;
  teardownAt: number | null;
  killedAt: number | null;
  /** The exit, or when vigild gave up waiting for an unkillable worker. */
  exitedAt: number | null;
}

export interface StopRequest {
  reason: ShutdownReason;
  teardown: TeardownMode;
  /** The signal that asked a plain worker to stop; null for protocol workers. */
  signal: NodeJS.Signals | null;
}

export interface ShutdownDurations {
  totalMs: number | null;
  handlersMs: number | null;
  teardownMs: number | null;
}
