// One worker process: the edge that carries out what lifecycle.step()
// decides. It owns the child, its protocol channel, its heartbeat slot and its
// one deadline timer, and turns everything that happens into lifecycle events.
import { ENV, STACK_DUMP_SIGNAL, type ShutdownReason, type TeardownMode } from "../../lib/protocol/index.js";
import type { Clock } from "../clock/clock.js";
import { DeadlineTimer } from "../clock/deadline.js";
import type { ProgramConfig } from "../config/types.js";
import { assertNever } from "../core/assert.js";
import type { EventSink, WorkerRef } from "../core/events.js";
import type { HangPhase } from "../core/vocabulary.js";
import { Channel } from "./channel.js";
import type { HeartbeatFile, HeartbeatMonitor } from "./heartbeat.js";
import type { Host } from "./host.js";
import { oomScorePlan, withOomScore } from "./oom-score.js";
import { initialState, step, unspawnedState, type LifecycleConfig, type WorkerEffect, type WorkerEvent, type WorkerState } from "./lifecycle.js";
import { WorkerOutput, type OutputSink } from "./output.js";
import { journalCommand, type OutputRoute } from "./journal.js";
import type { Fields, OutputEntry } from "../core/log-entry.js";
import { classifyShutdown, shutdownDurations } from "./policy.js";
import { workerFds } from "./process.js";
import { dropPrivileges } from "./user.js";
import { starvationSuspected } from "./starvation.js";
import type { ProcessIdentity } from "./procfs.js";

/** The shared heartbeat file's slots and the timer that watches them (worker/heartbeat.ts). */
export interface Heartbeats {
  file: Pick<HeartbeatFile, "allocate" | "release" | "fd">;
  monitor: Pick<HeartbeatMonitor, "watch" | "unwatch">;
}

export interface WorkerDeps {
  clock: Clock;
  host: Host;
  emit: EventSink;
  heartbeat: Heartbeats;
  /** Called once, when the process is gone and everything it held is released. */
  onEnd: (worker: Worker) => void;
  onReadiness: (worker: Worker, ready: boolean) => void;
  /** A hang was detected (running, or in a phase of its stop). */
  onHang: (worker: Worker, phase: HangPhase, afterMs: number) => void;
  /** The environment every worker starts from (PATH and little else). */
  baseEnv: Readonly<Record<string, string>>;
  output: WorkerOutputDeps;
  sockets: SocketLeases;
}

export interface WorkerOutputDeps {
  route: OutputRoute;
  /** Writes lines to vigild's log in one write; `taken` runs once the log's reader has them. */
  log: (lines: readonly OutputEntry[], taken: () => void) => void;
}

/** The listening sockets a worker holds from spawn to end (daemon/sockets/set.ts). */
export interface SocketLeases {
  acquire(names: readonly string[]): { readonly fds: readonly number[]; release(): void };
}

/**
 * sd_listen_fds(3) ignores sockets unless LISTEN_PID is the caller's own pid,
 * which Node's spawn cannot set after fork; a shell sets it to its own pid
 * and execs the worker, which keeps that pid (about 1 ms per spawn).
 */
export function withListenPid(command: readonly string[]): string[] {
  return ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"', ...command];
}

export function lifecycleConfig(cfg: ProgramConfig): LifecycleConfig {
  return {
    protocol: cfg.protocol,
    readyTimeoutMs: cfg.readyTimeoutMs,
    stackDumpGraceMs: cfg.stackDumpGraceMs,
    handlersTimeoutMs: cfg.shutdown.handlersTimeoutMs,
    teardownHangAfterMs: cfg.shutdown.teardownHangAfterMs,
    timeoutMs: cfg.shutdown.timeoutMs,
    signal: cfg.shutdown.signal,
  };
}

export class Worker {
  state: WorkerState;
  pid: number | null = null;
  private channel: Channel | null = null;
  private slot: number | null = null;
  private readonly timer: DeadlineTimer;
  private ended = false;
  /** When a missed heartbeat was excused by CPU starvation; one excuse per silence. */
  private starvationGraceFrom: number | null = null;
  /** The process tree as it was when the stop or kill began: what setsid() cannot hide. */
  private tree: ProcessIdentity[] = [];
  private readonly lc: LifecycleConfig;
  private lease: { readonly fds: readonly number[]; release(): void } | null = null;
  /** Lets go of the child's handle and pipes, which would otherwise keep vigild's event loop alive. */
  private letGo: (() => void) | null = null;

  constructor(
    /** Unique within its program, for as long as the program exists. */
    readonly id: number,
    readonly program: ProgramConfig,
    readonly index: number,
    private readonly deps: WorkerDeps,
    private readonly teardownAtSpawn: TeardownMode,
  ) {
    this.lc = lifecycleConfig(program);
    // Node runs timers before it reads sockets: a handlers-done already in the
    // socket is read before the deadline is judged.
    this.timer = new DeadlineTimer(deps.clock, () => deps.clock.defer(() => this.dispatch({ type: "deadline" })));
    // Until start() has a process, the worker is not ready and has no deadline.
    this.state = { ...unspawnedState(deps.clock.now()), deadline: null };
  }

  get ref(): WorkerRef {
    return { program: this.program.name, worker: this.index, pid: this.pid };
  }

  get name(): string {
    return `${this.program.name}/${this.index}`;
  }

  start(): void {
    const { clock, host } = this.deps;
    const cfg = this.program;
    const useProtocol = cfg.protocol !== "off";
    const beats = useProtocol && cfg.heartbeatTimeoutMs > 0;
    if (beats) this.slot = this.deps.heartbeat.file.allocate();
    let command: readonly string[] = cfg.command;
    let userEnv: Record<string, string> = {};
    if (cfg.user !== null) {
      const resolved = host.resolveUser(cfg.user);
      const drop = resolved.ok ? dropPrivileges(cfg.command, resolved.ids, host.uid()) : resolved;
      if (!drop.ok) {
        // Reported on the next turn, like an exec failure: the caller's start() loop must finish first.
        clock.defer(() => this.failSpawn(drop.error));
        return;
      }
      command = drop.command;
      userEnv = drop.env;
    }
    // vigild's lowered OOM score is not the workers' (oom-score.ts).
    const oom = oomScorePlan(host.ownOomScoreAdj(), cfg.user !== null);
    if (oom.kind === "choom") command = withOomScore(command, oom.value);
    const route = this.deps.output.route;
    if (route.kind === "journal" || cfg.sockets.length > 0) {
      const [file] = cfg.command;
      const pathEnv = cfg.env.PATH ?? this.deps.baseEnv.PATH ?? "/usr/bin:/bin";
      const error = file === undefined ? "empty command" : host.execError(file, cfg.cwd, pathEnv);
      if (error !== null) {
        clock.defer(() => this.failSpawn(error));
        return;
      }
    }
    if (route.kind === "journal") command = journalCommand(route.systemdCat, this.name, command);
    this.lease = cfg.sockets.length > 0 ? this.deps.sockets.acquire(cfg.sockets) : null;
    const listenFds = this.lease?.fds ?? [];
    if (listenFds.length > 0) command = withListenPid(command);
    const result = host.spawn({
      command,
      cwd: cfg.cwd,
      env: { ...userEnv, ...this.environment(useProtocol, listenFds.length) },
      listenFds,
      protocol: useProtocol,
      heartbeatFd: beats ? this.deps.heartbeat.file.fd : null,
      oomScoreAdj: oom.kind === "set-after-spawn" ? oom.value : null,
    });
    if (!result.ok) {
      this.releaseSockets();
      void result.error.then((error) => this.failSpawn(error));
      return;
    }
    const proc = result.process;
    this.letGo = () => {
      proc.unref();
      proc.stdout.destroy();
      proc.stderr.destroy();
    };
    this.pid = proc.pid;
    this.deps.emit({ type: "worker-spawned", ...this.ref });
    const initial = initialState(clock.now(), this.lc);
    this.state = initial.next;
    this.apply(initial.effects);
    this.timer.set(this.state.deadline);
    // Under journald these carry only what systemd-cat says before it execs the worker.
    const output = new WorkerOutput(this.outputSink(), (ms, fn) => void clock.at(clock.now() + ms, fn));
    output.attach(proc.stdout, "stdout");
    output.attach(proc.stderr, "stderr");
    if (proc.channel) {
      this.channel = new Channel(proc.channel, {
        message: (message) => this.dispatch({ type: "message", message }),
        protocolError: (error) => this.deps.emit({ type: "protocol-error", error, ...this.ref }),
      });
    }
    proc.onExit((code, signal) => this.dispatch({ type: "exit", code, signal }));
  }

  stop(reason: ShutdownReason, teardown: TeardownMode, at?: number): void {
    this.dispatch({ type: "stop", reason, teardown, ...(at !== undefined ? { at } : {}) });
  }

  /** Second SIGTERM: kill now, whatever phase. */
  force(): void {
    this.dispatch({ type: "force" });
  }

  get heartbeatSlot(): number | null {
    return this.slot;
  }

  get alive(): boolean {
    return !this.ended;
  }

  private watchHeartbeat(slot: number, since: number): void {
    this.deps.heartbeat.monitor.watch(slot, this.program.heartbeatTimeoutMs, since, (lastBeatAt) => this.onMissedBeat(slot, lastBeatAt));
  }

  /** A missed deadline: a hang, unless the host's CPU is starved (then one more timeout, once per silence). */
  private onMissedBeat(slot: number, lastBeatAt: number): void {
    const { clock, host } = this.deps;
    const now = clock.now();
    const extended = this.starvationGraceFrom !== null && lastBeatAt <= this.starvationGraceFrom;
    const pressure = host.cpuPressure();
    if (this.pid !== null && starvationSuspected({ pressure, state: host.schedulerState(this.pid), extended })) {
      this.starvationGraceFrom = now;
      this.deps.emit({ type: "worker-starved", afterMs: now - lastBeatAt, pressure: pressure ?? 0, ...this.ref });
      this.watchHeartbeat(slot, now);
      return;
    }
    this.dispatch({ type: "heartbeat-missed", lastBeatAt });
  }

  private rememberTree(pid: number): void {
    const known = new Set(this.tree.map((p) => `${p.pid}/${p.start}`));
    for (const p of this.deps.host.snapshotTree(pid)) if (!known.has(`${p.pid}/${p.start}`)) this.tree.push(p);
  }

  private outputSink(): OutputSink {
    const { log } = this.deps.output;
    // The pid is fixed at spawn: read it once, not per line.
    const fields: Fields = { program: this.program.name, worker: this.index, pid: this.pid };
    const stdout: Fields = { ...fields, stream: "stdout" };
    const stderr: Fields = { ...fields, stream: "stderr" };
    return {
      lines: (lines, taken) =>
        log(
          lines.map((l) => ({ priority: l.priority ?? 6, message: l.text, fields: l.stream === "stdout" ? stdout : stderr })),
          taken,
        ),
      dropped: (bytes, first) => this.deps.emit({ type: "worker-output-dropped", bytes, first, ...this.ref }),
    };
  }

  private releaseSockets(): void {
    this.lease?.release();
    this.lease = null;
  }

  private environment(useProtocol: boolean, listening: number): Record<string, string> {
    const env: Record<string, string> = {
      ...this.deps.baseEnv,
      ...this.program.env,
      [ENV.program]: this.program.name,
      [ENV.worker]: String(this.index),
    };
    if (listening > 0) {
      // LISTEN_PID is set by the shell of withListenPid(), in the worker's own process.
      env.LISTEN_FDS = String(listening);
      env.LISTEN_FDNAMES = this.program.sockets.join(":");
    }
    const fds = workerFds(listening);
    if (useProtocol) {
      env[ENV.fd] = String(fds.protocol);
      env[ENV.teardown] = this.teardownAtSpawn;
      if (this.slot !== null) {
        env[ENV.heartbeatFd] = String(fds.heartbeat);
        env[ENV.heartbeatSlot] = String(this.slot);
        env[ENV.heartbeatIntervalMs] = String(Math.max(1, Math.floor(this.program.heartbeatTimeoutMs / 4)));
      }
    }
    return env;
  }

  private failSpawn(error: string): void {
    this.deps.emit({ type: "worker-spawn-failed", error, ...this.ref });
    this.dispatch({ type: "spawn-failed", error });
  }

  private dispatch(event: WorkerEvent): void {
    if (this.ended) {
      if (event.type === "exit") this.exitedAfterEnd(event.code, event.signal);
      return;
    }
    const { next, effects } = step(this.state, event, this.deps.clock.now(), this.lc);
    this.state = next;
    this.apply(effects);
    this.timer.set(this.state.deadline);
    if (next.phase === "exited") this.end();
  }

  private apply(effects: readonly WorkerEffect[]): void {
    const { host } = this.deps;
    for (const effect of effects) {
      switch (effect.type) {
        case "send-shutdown":
          this.channel?.sendShutdown(effect);
          break;
        case "signal-group":
          if (this.pid !== null) host.signalGroup(this.pid, effect.signal);
          break;
        case "dump-stack":
          if (this.pid !== null) {
            host.signalProcess(this.pid, STACK_DUMP_SIGNAL);
            // A stopped process (SIGSTOP, a debugger gone) cannot print its
            // stacks; let it run for the grace it has before the kill.
            host.signalProcess(this.pid, "SIGCONT");
          }
          break;
        case "readiness":
          // A plain worker is ready by being spawned; only a protocol worker's word is news.
          if (effect.ready && this.state.kind === "protocol" && this.state.t.readyAt !== null) {
            this.deps.emit({ type: "worker-ready", afterMs: this.state.t.readyAt - this.state.t.spawnedAt, ...this.ref });
          }
          this.deps.onReadiness(this, effect.ready);
          break;
        case "hang":
          this.deps.emit({ type: "worker-hang", phase: effect.phase, afterMs: effect.afterMs, ...this.ref });
          this.deps.onHang(this, effect.phase, effect.afterMs);
          break;
        case "not-ready":
          this.deps.emit({ type: "worker-not-ready", afterMs: effect.afterMs, timeoutMs: effect.timeoutMs, ...this.ref });
          break;
        case "status":
          this.deps.emit({ type: "worker-status", text: effect.text, ...this.ref });
          break;
        case "unkillable": {
          const stuck = this.pid !== null ? host.whereStuck(this.pid) : { state: null, wchan: null };
          this.deps.emit({ type: "worker-unkillable", afterMs: effect.afterMs, state: stuck.state, wchan: stuck.wchan, ...this.ref });
          break;
        }
        case "ignored":
          this.deps.emit({ type: "event-ignored", event: effect.event, phase: effect.phase, ...this.ref });
          break;
        case "watch-heartbeat":
          if (this.slot !== null) this.watchHeartbeat(this.slot, this.deps.clock.now());
          break;
        case "unwatch-heartbeat":
          if (this.slot !== null) this.deps.heartbeat.monitor.unwatch(this.slot);
          break;
        case "snapshot-tree":
          if (this.pid !== null) this.rememberTree(this.pid);
          break;
        case "stopping":
          this.deps.emit({ type: "worker-stopping", ...effect.stop, ...this.ref });
          break;
        default:
          assertNever(effect, "worker effect");
      }
    }
  }

  private end(): void {
    this.ended = true;
    this.timer.set(null);
    if (this.slot !== null) {
      this.deps.heartbeat.monitor.unwatch(this.slot);
      // An unkillable process still holds the heartbeat file open: were its
      // slot handed to a new worker, a thaw could write a stale beat into it.
      if (!this.state.unkillable) {
        this.deps.heartbeat.file.release(this.slot);
        this.slot = null;
      }
    }
    // Whatever the worker forked and left behind goes with it: its process
    // group, and what escaped the group with setsid() since it was seen.
    const { host } = this.deps;
    if (this.pid !== null) host.signalGroup(this.pid, "SIGKILL");
    const leaked = host.survivors(this.tree.filter((p) => p.pid !== this.pid && p.pgid !== this.pid));
    for (const p of leaked) host.signalProcess(p.pid, "SIGKILL");
    if (leaked.length > 0) this.deps.emit({ type: "worker-leaked", pids: leaked.map((p) => p.pid), ...this.ref });
    this.tree = [];
    this.releaseSockets();
    this.channel?.close();
    this.channel = null;
    // A process vigild gave up on may outlive vigild: it must not hold vigild's exit.
    if (this.state.unkillable) this.letGo?.();
    this.letGo = null;
    const s = this.state;
    this.deps.emit({
      type: "worker-exited",
      code: s.exit?.code ?? null,
      signal: s.exit?.signal ?? null,
      error: s.exit?.error ?? null,
      outcome: classifyShutdown(s),
      durations: shutdownDurations(s),
      hang: s.hang?.phase ?? null,
      uptimeMs: (s.t.exitedAt ?? this.deps.clock.now()) - s.t.spawnedAt,
      stop: s.stop,
      timeline: s.t,
      unkillable: s.unkillable,
      ...this.ref,
    });
    this.deps.onEnd(this);
  }

  /** The real exit of a worker already given up on as unkillable: what it held can be reused now. */
  private exitedAfterEnd(code: number | null, signal: NodeJS.Signals | null): void {
    if (!this.state.unkillable) return;
    if (this.slot !== null) this.deps.heartbeat.file.release(this.slot);
    this.slot = null;
    const afterMs = this.deps.clock.now() - (this.state.t.exitedAt ?? this.deps.clock.now());
    this.deps.emit({ type: "worker-unkillable-gone", afterMs, code, signal, ...this.ref });
  }
}
