// Programs and workers as vigilctl status and D-Bus ListWorkers show them.
import type { ProgramInfo, WorkerInfo } from "../control.js";
import { workerStateLabel } from "../metrics/metrics.js";
import type { Supervisor } from "./supervisor.js";

export function describeSupervisor(supervisor: Supervisor | null, now: number): { programs: ProgramInfo[]; workers: WorkerInfo[] } {
  const programs: ProgramInfo[] = [];
  const workers: WorkerInfo[] = [];
  if (!supervisor) return { programs, workers };
  // One read of the heartbeat file for every worker's last beat.
  const beats = supervisor.heartbeatFile.readAll();
  for (const program of supervisor.allPrograms()) {
    programs.push({
      name: program.name,
      state: program.state,
      instances: program.cfg.instances,
      ready: program.readyCount,
      teardown: program.teardownMode,
      teardownSetting: program.cfg.shutdown.teardown,
      restarts: Object.fromEntries(program.restarts),
    });
    program.slots.forEach((slot, index) => {
      const live = [slot.worker, slot.retiring?.worker].filter((w) => w != null);
      for (const w of live) {
        const beat = w.heartbeatSlot !== null ? beats(w.heartbeatSlot) : 0;
        workers.push({
          program: program.name,
          worker: index,
          pid: w.pid,
          state: workerStateLabel(w.state.phase) ?? "stopping",
          uptimeMs: now - w.state.t.spawnedAt,
          restarts: slot.restarts,
          lastHeartbeatAgeMs: beat > 0 ? Math.max(0, now - beat) : null,
          status: w.state.status,
        });
      }
      if (live.length === 0) {
        workers.push({
          program: program.name,
          worker: index,
          pid: null,
          state: slot.backoff ? "backoff" : program.state === "failed" ? "failed" : "stopping",
          uptimeMs: null,
          restarts: slot.restarts,
          lastHeartbeatAgeMs: null,
          status: null,
        });
      }
    });
  }
  return { programs, workers };
}
