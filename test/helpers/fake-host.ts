// A fake operating system for the unit tier: processes that exist only as
// objects, driven by the test (say a protocol message, exit) or by a small
// script per program (ready at once, obey SIGTERM). Together with FakeClock
// it lets Program, Supervisor and Daemon run exactly, without forking.
import { Duplex, PassThrough } from "node:stream";
import { parseVigilMessage, type ShutdownMessage, type WorkerMessage } from "../../lib/protocol/index.js";
import type { Clock } from "../../daemon/clock/clock.js";
import type { Host, HostProcess, HostSpawnResult } from "../../daemon/worker/host.js";
import type { SpawnSpec } from "../../daemon/worker/process.js";
import type { ProcessIdentity } from "../../daemon/worker/procfs.js";

export type Behaviour = {
  /** Say hello and ready on the next turn after spawn (protocol workers). */
  ready?: boolean;
  /** On a shutdown message: handlers-done after this many ms, then exit 0 (null: never answer). */
  handlersMs?: number | null;
  /** On SIGTERM (a plain worker's stop signal): exit by it (default) or ignore it. */
  ignoreTerm?: boolean;
  /** SIGKILL does not end it (a process in D state). */
  unkillable?: boolean;
};

export class FakeProcess implements HostProcess {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly channel: Duplex | null;
  /** What vigild wrote on the protocol socket. */
  readonly received: ShutdownMessage[] = [];
  /** Signals sent to its process group, in order. */
  readonly signals: NodeJS.Signals[] = [];
  exited = false;
  private listeners: Array<(code: number | null, signal: NodeJS.Signals | null) => void> = [];

  constructor(
    readonly pid: number,
    readonly spec: SpawnSpec,
    readonly spawnedAt: number,
    private readonly host: FakeHost,
    readonly behaviour: Behaviour,
  ) {
    this.channel = spec.protocol
      ? new Duplex({
          read() {},
          write: (chunk: Buffer, _encoding, callback) => {
            for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) {
              const parsed = parseVigilMessage(line);
              if (parsed.ok) {
                this.received.push(parsed.message);
                this.host.onShutdownMessage(this, parsed.message);
              }
            }
            callback();
          },
        })
      : null;
  }

  get command(): readonly string[] {
    return this.spec.command;
  }

  /** A line from the worker, as the protocol client would write it. */
  say(message: WorkerMessage): void {
    if (this.exited || !this.channel) return;
    this.channel.emit("data", Buffer.from(`${JSON.stringify(message)}\n`));
  }

  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.exited) return;
    this.exited = true;
    for (const listener of this.listeners) listener(code, signal);
    this.listeners = [];
  }

  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.listeners.push(listener);
  }

  unref(): void {}
}

export class FakeHost implements Host {
  readonly processes: FakeProcess[] = [];
  private nextPid = 1000;
  /** Behaviour by program name (VIGIL_PROGRAM); `default` for the rest. */
  behaviours = new Map<string, Behaviour>();
  fallback: Behaviour = { ready: true, handlersMs: 0 };
  rss = new Map<number, number>();
  /** Commands that cannot be executed, as execvp(3) would fail on them. */
  missing = new Set<string>();

  constructor(private readonly clock: Clock) {}

  spawn(spec: SpawnSpec): HostSpawnResult {
    const program = spec.env.VIGIL_PROGRAM ?? "";
    const behaviour = this.behaviours.get(program) ?? this.fallback;
    const proc = new FakeProcess(this.nextPid++, spec, this.clock.now(), this, { ...behaviour });
    this.processes.push(proc);
    if (behaviour.ready && spec.protocol) {
      this.clock.defer(() => {
        proc.say({ type: "hello", client: "fake", version: "test" });
        proc.say({ type: "ready" });
      });
    }
    return { ok: true, process: proc };
  }

  /** Live processes of one program, oldest first. */
  live(program?: string): FakeProcess[] {
    return this.processes.filter((p) => !p.exited && (program === undefined || p.spec.env.VIGIL_PROGRAM === program));
  }

  onShutdownMessage(proc: FakeProcess, _message: ShutdownMessage): void {
    const ms = proc.behaviour.handlersMs;
    if (ms === null || ms === undefined) return;
    this.clock.at(this.clock.now() + ms, () => {
      proc.say({ type: "handlers-done", timedOut: false });
      this.clock.defer(() => proc.exit(0));
    });
  }

  signalGroup(pid: number, signal: NodeJS.Signals): boolean {
    const proc = this.processes.find((p) => p.pid === pid);
    if (!proc || proc.exited) return false;
    proc.signals.push(signal);
    if (signal === "SIGKILL" && !proc.behaviour.unkillable) this.clock.defer(() => proc.exit(null, "SIGKILL"));
    if (signal === "SIGTERM" && !proc.behaviour.ignoreTerm) this.clock.defer(() => proc.exit(null, "SIGTERM"));
    return true;
  }

  signalProcess(pid: number, signal: NodeJS.Signals): boolean {
    const proc = this.processes.find((p) => p.pid === pid);
    if (!proc || proc.exited) return false;
    proc.signals.push(signal);
    return true;
  }

  execError(file: string): string | null {
    return this.missing.has(file) ? `spawn ${file} ENOENT` : null;
  }

  resolveUser(user: string): ReturnType<Host["resolveUser"]> {
    return { ok: false, error: `user "${user}" does not exist` };
  }

  uid(): number | undefined {
    return 1000;
  }

  /** vigild's own oom_score_adj as a test sets it; the kernel's default otherwise. */
  ownOomScore: number | null = 0;

  ownOomScoreAdj(): number | null {
    return this.ownOomScore;
  }

  snapshotTree(): ProcessIdentity[] {
    return [];
  }

  survivors(): ProcessIdentity[] {
    return [];
  }

  treeRssBytes(pid: number): number {
    return this.rss.get(pid) ?? 0;
  }

  cpuPressure(): number | null {
    return null;
  }

  schedulerState(): string | null {
    return "S";
  }

  whereStuck(): { state: string | null; wchan: string | null } {
    return { state: "D", wchan: "__refrigerator" };
  }
}
