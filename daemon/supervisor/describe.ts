// Programs and workers as vigilctl status and D-Bus ListWorkers show them.
// The state of each slot comes from Program.slots(), which vigil_workers
// counts too, so the two can never disagree.
import type { ProgramInfo, WorkerInfo } from "./views.js";
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
      restarts: { ...program.restarts },
    });
    for (const slot of program.slots()) {
      for (const { worker: w, label } of slot.workers) {
        const beat = w.heartbeatSlot !== null ? beats(w.heartbeatSlot) : 0;
        workers.push({
          program: program.name,
          worker: slot.index,
          pid: w.pid,
          state: label,
          uptimeMs: now - w.state.t.spawnedAt,
          restarts: slot.restarts,
          lastHeartbeatAgeMs: beat > 0 ? Math.max(0, now - beat) : null,
          status: w.state.status,
        });
      }
      if (slot.empty !== null) {
        workers.push({
          program: program.name,
          worker: slot.index,
          pid: null,
          state: slot.empty,
          uptimeMs: null,
          restarts: slot.restarts,
          lastHeartbeatAgeMs: null,
          status: null,
        });
      }
    }
  }
  return { programs, workers };
}
