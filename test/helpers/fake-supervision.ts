// Program and Supervisor on a fake clock and a fake host: what the unit tier
// needs to build them with nothing real behind them but a heartbeat file.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeClock } from "../../daemon/clock/fake.js";
import { parseConfig } from "../../daemon/config/load.js";
import type { Config } from "../../daemon/config/types.js";
import type { SupervisorEvent } from "../../daemon/core/events.js";
import { Program, type ProgramDeps } from "../../daemon/supervisor/program.js";
import type { Edges } from "../../daemon/supervisor/supervisor.js";
import { HeartbeatFile, HeartbeatMonitor } from "../../daemon/worker/heartbeat.js";
import { FakeHost } from "./fake-host.js";

export interface Rig {
  clock: FakeClock;
  host: FakeHost;
  events: SupervisorEvent[];
  edges: Edges;
  /** OOM kills the fake cgroup reports for the next workers that die of SIGKILL. */
  oomKills: { pending: number };
}

export function rig(): Rig {
  const clock = new FakeClock();
  const host = new FakeHost(clock);
  const file = new HeartbeatFile(mkdtempSync(join(tmpdir(), "vigil-unit-")));
  const oomKills = { pending: 0 };
  const oom = {
    attribute(killedFromOutside: boolean): boolean {
      if (!killedFromOutside || oomKills.pending === 0) return false;
      oomKills.pending--;
      return true;
    },
  };
  return { clock, host, events: [], edges: { host, heartbeat: { file, monitor: new HeartbeatMonitor(file, clock) }, oom }, oomKills };
}

/** A configuration from the YAML of its `programs:` (and anything else at top level). */
export function config(yaml: string): Config {
  return parseConfig(`state_dir: /tmp/vigil-unit\n${yaml}`, "/etc/vigil/vigil.yaml");
}

export function programDeps(r: Rig, onChange: () => void = () => undefined): ProgramDeps {
  return {
    clock: r.clock,
    host: r.host,
    emit: (event) => r.events.push(event),
    heartbeat: r.edges.heartbeat,
    oom: r.edges.oom,
    baseEnv: { PATH: "/usr/bin:/bin" },
    onChange: () => onChange(),
    output: { route: { kind: "log" }, log: (_lines, taken) => taken() },
    sockets: { acquire: () => ({ fds: [], release: () => undefined }) },
  };
}

export function program(r: Rig, yaml: string): Program {
  const cfg = config(yaml).programs[0]!;
  return new Program(cfg, programDeps(r));
}

export function eventsOf<T extends SupervisorEvent["type"]>(r: Rig, type: T): Array<Extract<SupervisorEvent, { type: T }>> {
  return r.events.filter((e): e is Extract<SupervisorEvent, { type: T }> => e.type === type);
}
