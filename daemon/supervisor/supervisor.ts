// All programs of one configuration, the shared heartbeat machinery, and
// the answers the rest of vigild asks of them (ready? what is running?).
import type { ShutdownReason } from "../../lib/protocol/index.js";
import type { Clock } from "../clock/clock.js";
import type { Config } from "../config/types.js";
import { HeartbeatFile, HeartbeatMonitor } from "../worker/heartbeat.js";
import type { EventSink } from "./events.js";
import { Program } from "./program.js";

export interface SupervisorDeps {
  clock: Clock;
  emit: EventSink;
  /** Called when overall readiness may have changed. */
  onChange?: () => void;
  baseEnv?: Readonly<Record<string, string>>;
  heartbeatDir?: string;
}

/** What a worker inherits from vigild unless the configuration says otherwise. */
export function defaultBaseEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const base: Record<string, string> = {};
  for (const key of ["PATH", "LANG", "TZ"]) {
    const value = env[key];
    if (value !== undefined) base[key] = value;
  }
  base.PATH ??= "/usr/local/bin:/usr/bin:/bin";
  return base;
}

export class Supervisor {
  readonly programs = new Map<string, Program>();
  readonly heartbeatFile: HeartbeatFile;
  readonly monitor: HeartbeatMonitor;

  constructor(
    config: Config,
    deps: SupervisorDeps,
  ) {
    this.heartbeatFile = new HeartbeatFile(deps.heartbeatDir);
    this.monitor = new HeartbeatMonitor(this.heartbeatFile, deps.clock);
    for (const cfg of config.programs) {
      this.programs.set(
        cfg.name,
        new Program(cfg, {
          clock: deps.clock,
          emit: deps.emit,
          heartbeat: { file: this.heartbeatFile, monitor: this.monitor },
          baseEnv: deps.baseEnv ?? defaultBaseEnv(),
          onChange: () => deps.onChange?.(),
        }),
      );
    }
  }

  start(): void {
    for (const program of this.programs.values()) program.start();
  }

  get allReady(): boolean {
    return [...this.programs.values()].every((p) => p.ready);
  }

  get failedPrograms(): Program[] {
    return [...this.programs.values()].filter((p) => p.state === "failed");
  }

  workerCount(): number {
    let n = 0;
    for (const p of this.programs.values()) n += p.workers().length;
    return n;
  }

  /** Every program stops in parallel; resolves when no worker is left. */
  async stop(reason: ShutdownReason): Promise<void> {
    await Promise.all([...this.programs.values()].map((p) => p.stop(reason)));
    this.monitor.stop();
  }

  force(): void {
    for (const program of this.programs.values()) program.force();
  }

  close(): void {
    this.monitor.stop();
    this.heartbeatFile.close();
  }
}
