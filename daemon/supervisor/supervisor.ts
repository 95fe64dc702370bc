// All programs of one configuration, the shared heartbeat machinery, and
// the answers the rest of vigild asks of them (ready? what is running?).
import type { ShutdownReason } from "../../lib/protocol/index.js";
import type { Clock } from "../clock/clock.js";
import type { Config, ProgramConfig } from "../config/types.js";
import { HeartbeatFile, HeartbeatMonitor } from "../worker/heartbeat.js";
import { realHost, type Host } from "../worker/host.js";
import { OomKills } from "../worker/oom.js";
import type { SocketLeases, WorkerOutputDeps } from "../worker/worker.js";
import type { EventSink } from "../core/events.js";
import { Program, type ProgramDeps } from "./program.js";

/** What the supervisor's workers touch outside vigild: the OS, the heartbeat file, the OOM-kill count. */
export interface Edges {
  host: Host;
  heartbeat: { file: HeartbeatFile; monitor: HeartbeatMonitor };
  oom: ProgramDeps["oom"];
}

/** The real edges: the heartbeat file in `heartbeatDir` (default: /dev/shm), this cgroup's OOM count. */
export function realEdges(clock: Clock, heartbeatDir?: string): Edges {
  const file = new HeartbeatFile(heartbeatDir);
  return { host: realHost, heartbeat: { file, monitor: new HeartbeatMonitor(file, clock) }, oom: new OomKills() };
}

export interface SupervisorDeps {
  clock: Clock;
  emit: EventSink;
  edges: Edges;
  /** Called when overall readiness may have changed. */
  onChange?: () => void;
  baseEnv?: Readonly<Record<string, string>>;
  output: WorkerOutputDeps;
  sockets: SocketLeases;
}

/**
 * What a worker inherits from vigild: PATH and nothing else (its own
 * environment may hold secrets); the program's `env` adds or overrides.
 */
export function defaultBaseEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return { PATH: env.PATH || "/usr/local/bin:/usr/bin:/bin" };
}

export interface ReloadPlan {
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
}

/** Which programs a new configuration adds, removes, changes or leaves alone. */
export function planReload(current: ReadonlyMap<string, { cfg: ProgramConfig }>, next: Config): ReloadPlan {
  const plan: ReloadPlan = { added: [], removed: [], changed: [], unchanged: [] };
  const nextNames = new Set(next.programs.map((p) => p.name));
  for (const cfg of next.programs) {
    const existing = current.get(cfg.name);
    if (!existing) plan.added.push(cfg.name);
    else if (JSON.stringify(existing.cfg) !== JSON.stringify(cfg)) plan.changed.push(cfg.name);
    else plan.unchanged.push(cfg.name);
  }
  for (const name of current.keys()) if (!nextNames.has(name)) plan.removed.push(name);
  return plan;
}

export function describePlan(plan: ReloadPlan): string {
  const parts = (["added", "removed", "changed"] as const)
    .filter((k) => plan[k].length > 0)
    .map((k) => `${k} ${plan[k].join(", ")}`);
  return parts.length > 0 ? parts.join("; ") : "no program changed";
}

export class Supervisor {
  readonly programs = new Map<string, Program>();
  /** Programs a reload removed, until their workers are gone. */
  readonly leaving = new Set<Program>();
  readonly heartbeatFile: HeartbeatFile;
  readonly monitor: HeartbeatMonitor;
  private readonly programDeps: ProgramDeps;

  constructor(config: Config, deps: SupervisorDeps) {
    const { heartbeat, host, oom } = deps.edges;
    this.heartbeatFile = heartbeat.file;
    this.monitor = heartbeat.monitor;
    this.programDeps = {
      clock: deps.clock,
      host,
      emit: deps.emit,
      heartbeat,
      baseEnv: deps.baseEnv ?? defaultBaseEnv(),
      onChange: () => deps.onChange?.(),
      oom,
      output: deps.output,
      sockets: deps.sockets,
    };
    for (const cfg of config.programs) this.programs.set(cfg.name, new Program(cfg, this.programDeps));
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

  /** Every program, including those a reload is removing. */
  allPrograms(): Program[] {
    return [...this.programs.values(), ...this.leaving];
  }

  workerCount(): number {
    return this.allPrograms().reduce((n, p) => n + p.workers().length, 0);
  }

  expectedWorkers(): number {
    return [...this.programs.values()].reduce((n, p) => n + p.cfg.instances, 0);
  }

  readyWorkers(): number {
    return [...this.programs.values()].reduce((n, p) => n + p.readyCount, 0);
  }

  /**
   * Applies a new configuration as a difference: new programs start, removed
   * ones stop (phased, reason reload), changed ones are replaced slot by slot
   * (a new worker ready before the old one stops), the rest are untouched. A
   * FAILED program that changed starts afresh. Resolves when every change has
   * settled.
   */
  applyConfig(config: Config): { plan: ReloadPlan; settled: Promise<void> } {
    const plan = planReload(this.programs, config);
    const pending: Promise<void>[] = [];
    const next = new Map<string, Program>();
    for (const cfg of config.programs) {
      const current = this.programs.get(cfg.name);
      if (!current || current.state === "failed") {
        if (current) {
          this.leaving.add(current);
          pending.push(current.stop("reload").then(() => void this.leaving.delete(current)));
        }
        const fresh = new Program(cfg, this.programDeps);
        next.set(cfg.name, fresh);
        fresh.start();
      } else {
        next.set(cfg.name, current);
        if (plan.changed.includes(cfg.name)) pending.push(current.replaceAll("reload", cfg));
      }
    }
    for (const name of plan.removed) {
      const program = this.programs.get(name)!;
      this.leaving.add(program);
      pending.push(program.stop("reload").then(() => void this.leaving.delete(program)));
    }
    this.programs.clear();
    for (const [name, program] of next) this.programs.set(name, program);
    return { plan, settled: Promise.all(pending).then(() => undefined) };
  }

  /** Rolling, phased restart of one program (a FAILED one starts afresh). */
  restartProgram(name: string): Promise<void> | null {
    const program = this.programs.get(name);
    if (!program) return null;
    if (program.state === "failed") {
      this.leaving.add(program);
      void program.stop("restart").then(() => void this.leaving.delete(program));
      const fresh = new Program(program.cfg, this.programDeps);
      this.programs.set(name, fresh);
      fresh.start();
      return Promise.resolve();
    }
    return program.replaceAll("restart");
  }

  /** Every program stops in parallel; resolves when no worker is left. */
  async stop(reason: ShutdownReason, at?: number): Promise<void> {
    await Promise.all(this.allPrograms().map((p) => p.stop(reason, at)));
    this.monitor.stop();
  }

  force(): void {
    for (const program of this.allPrograms()) program.force();
  }

  close(): void {
    this.monitor.stop();
    this.heartbeatFile.close();
  }
}
