// What vigild offers to its control surfaces (D-Bus, and through it
// vigilctl). The daemon implements it; the D-Bus module only translates.
import type { DaemonStateName, HangPhase, Outcome } from "./core/vocabulary.js";
import type { LastShutdownReport } from "./shutdown/report.js";
import type { ProgramInfo, WorkerInfo } from "./supervisor/views.js";

export type { DaemonStateName, ProgramInfo, WorkerInfo };


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
