// Programs and workers as the control surfaces show them (D-Bus, vigilctl):
// plain data, filled in by describe.ts.
import type { ProgramStateName, RestartReason, TeardownMode, TeardownSetting, WorkerStateLabel } from "../core/vocabulary.js";

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
  state: ProgramStateName;
  instances: number;
  ready: number;
  /** The teardown mode in force (teardown: auto shows what it has switched to). */
  teardown: TeardownMode;
  teardownSetting: TeardownSetting;
  restarts: Partial<Record<RestartReason, number>>;
}
