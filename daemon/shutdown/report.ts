// The last-shutdown report: what a dying vigild leaves for the next one to
// serve (metrics, vigilctl last-shutdown, D-Bus GetLastShutdown).
import type { HangPhase, Outcome, ShutdownReason, TeardownMode } from "../core/vocabulary.js";

export const REPORT_VERSION = 1;
export const REPORT_FILE = "last-shutdown.json";

export interface WorkerShutdownRecord {
  program: string;
  worker: number;
  pid: number | null;
  reason: ShutdownReason;
  teardown: TeardownMode;
  /** The signal that asked a plain worker to stop; null for protocol workers. */
  signal: NodeJS.Signals | null;
  outcome: Outcome;
  hang: HangPhase | null;
  /** Milliseconds from the stop request; null for a phase that did not happen. */
  handlers_done_ms: number | null;
  teardown_begun_ms: number | null;
  killed_ms: number | null;
  exited_ms: number;
  handlers_ms: number | null;
  teardown_ms: number | null;
  exit_code: number | null;
  exit_signal: NodeJS.Signals | null;
}

export interface LastShutdownReport {
  version: typeof REPORT_VERSION;
  vigild_pid: number;
  /** Wall-clock times, for people. */
  started_at: string;
  ended_at: string;
  /** Monotonic duration of the whole stop. */
  duration_ms: number;
  /** A second SIGTERM/SIGINT forced the remaining workers. */
  forced_by_signal: boolean;
  summary: string;
  outcomes: Record<Outcome, number>;
  /** Programs whose teardown: auto had switched to skip. */
  teardown_switched: string[];
  workers: WorkerShutdownRecord[];
}
