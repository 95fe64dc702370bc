// An in-test Control (daemon/control.ts) for the D-Bus layer: the daemon's
// own behaviour is tested elsewhere; this one only has to keep the
// contract: unknown programs throw UnknownProgramError, a restart replaces
// the program's workers, reload answers with a ReloadResult, events reach
// every subscriber.
import {
  UnknownProgramError,
  type Control,
  type ControlEvent,
  type ReloadResult,
  type StatusSnapshot,
} from "../../daemon/control.js";
import type { LastShutdownReport } from "../../daemon/shutdown/report.js";

export function sampleStatus(): StatusSnapshot {
  return {
    state: "running",
    version: "0.1.0",
    pid: 4242,
    configFile: "/etc/vigil/vigil.yaml",
    statusText: "running: 3/3 workers ready",
    programs: [
      {
        name: "web",
        state: "running",
        instances: 2,
        ready: 2,
        teardown: "skip",
        teardownSetting: "auto",
        restarts: { hang: 1 },
      },
      {
        name: "batch",
        state: "failed",
        instances: 1,
        ready: 0,
        teardown: "destroy",
        teardownSetting: "destroy",
        restarts: { crash: 11 },
      },
      {
        name: "plain",
        state: "running",
        instances: 1,
        ready: 1,
        teardown: "destroy",
        teardownSetting: "destroy",
        restarts: {},
      },
    ],
    workers: [
      {
        program: "web",
        worker: 0,
        pid: 1001,
        state: "running",
        uptimeMs: 192_400.6,
        restarts: 0,
        lastHeartbeatAgeMs: 120.4,
        status: "serving 12 req/s",
      },
      {
        program: "web",
        worker: 1,
        pid: 1002,
        state: "running",
        uptimeMs: 5_000,
        restarts: 1,
        lastHeartbeatAgeMs: 80,
        status: null,
      },
      {
        program: "batch",
        worker: 0,
        pid: null,
        state: "failed",
        uptimeMs: null,
        restarts: 11,
        lastHeartbeatAgeMs: null,
        status: null,
      },
      {
        program: "plain",
        worker: 0,
        pid: 1003,
        state: "running",
        uptimeMs: 7_200_000,
        restarts: 0,
        lastHeartbeatAgeMs: null,
        status: null,
      },
    ],
  };
}

export function sampleReport(): LastShutdownReport {
  return {
    version: 1,
    vigild_pid: 4100,
    started_at: "2025-01-02T03:04:05.000Z",
    ended_at: "2025-01-02T03:04:10.250Z",
    duration_ms: 5250,
    forced_by_signal: false,
    summary: "stopped 3 workers in 5.3s: 1 clean, 1 skipped, 1 forced (1 teardown hang)",
    outcomes: { clean: 1, skipped: 1, forced: 1, unkillable: 0 },
    teardown_switched: ["web"],
    workers: [
      {
        program: "web",
        worker: 0,
        pid: 1001,
        reason: "stop",
        teardown: "destroy",
        signal: null,
        outcome: "forced",
        hang: "teardown",
        handlers_done_ms: 40,
        teardown_begun_ms: 45,
        killed_ms: 5000,
        exited_ms: 5010,
        handlers_ms: 40,
        teardown_ms: 4955,
        exit_code: null,
        exit_signal: "SIGKILL",
      },
      {
        program: "web",
        worker: 1,
        pid: 1002,
        reason: "stop",
        teardown: "skip",
        signal: null,
        outcome: "skipped",
        hang: null,
        handlers_done_ms: 30,
        teardown_begun_ms: null,
        killed_ms: null,
        exited_ms: 35,
        handlers_ms: 30,
        teardown_ms: null,
        exit_code: 0,
        exit_signal: null,
      },
      {
        program: "plain",
        worker: 0,
        pid: 1003,
        reason: "stop",
        teardown: "destroy",
        signal: "SIGTERM",
        outcome: "clean",
        hang: null,
        handlers_done_ms: null,
        teardown_begun_ms: null,
        killed_ms: null,
        exited_ms: 12,
        handlers_ms: null,
        teardown_ms: null,
        exit_code: 0,
        exit_signal: null,
      },
    ],
  };
}

export class FakeControl implements Control {
  snapshot: StatusSnapshot = sampleStatus();
  report: LastShutdownReport | null = null;
  reloadResult: ReloadResult = { ok: true, summary: "reloaded: 3 programs, 1 changed (web: 2 workers replaced)" };
  /** A restart of this program fails with a plain Error (not UnknownProgramError). */
  failingProgram: string | null = null;
  /** While set, restarts wait for it: the restart is "in progress" until the test resolves it. */
  restartGate: Promise<void> | null = null;
  readonly restarted: string[] = [];
  private restartWaiters: Array<(name: string) => void> = [];
  private readonly listeners: Array<(event: ControlEvent) => void> = [];
  private nextPid = 2000;

  status(): StatusSnapshot {
    return structuredClone(this.snapshot);
  }

  async restartProgram(name: string): Promise<void> {
    if (!this.snapshot.programs.some((p) => p.name === name)) throw new UnknownProgramError(name);
    for (const wake of this.restartWaiters.splice(0)) wake(name);
    if (this.restartGate !== null) await this.restartGate;
    if (name === this.failingProgram) throw new Error(`worker ${name}/0 did not become ready within 30s`);
    for (const w of this.snapshot.workers) {
      if (w.program !== name) continue;
      w.pid = this.nextPid++;
      w.uptimeMs = 0;
      w.restarts += 1;
    }
    this.restarted.push(name);
  }

  /** Resolves with the program's name when the next restart begins. */
  restartStarts(): Promise<string> {
    return new Promise((resolve) => this.restartWaiters.push(resolve));
  }

  async reload(): Promise<ReloadResult> {
    return this.reloadResult;
  }

  lastShutdown(): LastShutdownReport | null {
    return this.report;
  }

  subscribe(listener: (event: ControlEvent) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const at = this.listeners.indexOf(listener);
      if (at !== -1) this.listeners.splice(at, 1);
    };
  }

  emit(event: ControlEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}
