// What vigild offers to its control surfaces (D-Bus, and through it
// vigilctl). The daemon implements it; the D-Bus module only translates.
import type { TeardownMode } from "../lib/protocol/index.js";
import type { LastShutdownReport } from "./shutdown/report.js";
import type { WorkerStateLabel } from "./metrics/metrics.js";
import type { ProgramState } from "./supervisor/program.js";
import type { HangPhase } from "./worker/lifecycle.js";
import type { Outcome, RestartReason } from "./worker/policy.js";

export type DaemonStateName = "starting" | "running" | "reloading" | "stopping" | "forcing" | "stopped";

export interface WorkerInfo {
  program: string;
  worker: number;
  pid: number | null;
  state: WorkerStateLabel;
  /** ms since this process was spawned; null while waiting to be restarted. */
  uptimeMs: number | null;
  /** Restarts of this worker slot (all reasons). */
  restarts: number;
  /** ms since the last heartbeat vigild has seen; null for plain workers and when heartbeats are off. */
  lastHeartbeatAgeMs: number | null;
  status: string | null;
}

export interface ProgramInfo {
  name: string;
  state: ProgramState;
  instances: number;
  ready: number;
  /** The teardown mode in force (teardown: auto shows what it has switched to). */
  teardown: TeardownMode;
  teardownSetting: TeardownMode | "auto";
  restarts: Partial<Record<RestartReason, number>>;
}

export interface StatusSnapshot {
  state: DaemonStateName;
  version: string;
  pid: number;
  configFile: string;
  /** One line, the same as systemd's STATUS=. */
  statusText: string;
  programs: ProgramInfo[];
  workers: WorkerInfo[];
}

export type ReloadResult = { ok: true; summary: string } | { ok: false; errors: string[] };

export class UnknownProgramError extends Error {
  constructor(readonly program: string) {
    super(`no program named "${program}"`);
    this.name = "UnknownProgramError";
  }
}

export type ControlEvent =
  | { type: "worker-hung"; program: string; worker: number; pid: number | null; phase: HangPhase; afterMs: number }
  | {
      type: "worker-exited";
      program: string;
      worker: number;
      pid: number | null;
      code: number | null;
      signal: string | null;
      outcome: Outcome | null;
    };

export interface Control {
  status(): StatusSnapshot;
  /** Rolling, phased restart (reason `restart`); resolves when every worker is replaced. Throws UnknownProgramError. */
  restartProgram(name: string): Promise<void>;
  /** Same as SIGHUP; resolves with the outcome. */
  reload(): Promise<ReloadResult>;
  lastShutdown(): LastShutdownReport | null;
  /** Returns the function that unsubscribes. */
  subscribe(listener: (event: ControlEvent) => void): () => void;
}
