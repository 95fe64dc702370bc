// Spawning and signalling worker processes: the one module that knows Node's
// child_process traps.
import { spawn, type ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";
import type { Socket } from "node:net";

export interface SpawnSpec {
  command: readonly string[];
  cwd: string | null;
  env: Record<string, string>;
  /** Give the worker a protocol socket on fd 3. */
  protocol: boolean;
  /** Inherited as fd 4 when set (the shared heartbeat file). */
  heartbeatFd: number | null;
}

export interface SpawnedProcess {
  child: ChildProcess;
  pid: number;
  stdout: Readable;
  stderr: Readable;
  channel: Socket | null;
}

/** A failed spawn's reason arrives asynchronously, with Node's 'error' event. */
export type SpawnResult = { ok: true; process: SpawnedProcess } | { ok: false; error: Promise<string> };

export const PROTOCOL_FD = 3;
export const HEARTBEAT_FD = 4;

export function spawnWorker(spec: SpawnSpec): SpawnResult {
  const [file, ...args] = spec.command;
  if (file === undefined) return { ok: false, error: Promise.resolve("empty command") };
  const stdio: Array<"ignore" | "pipe" | number> = ["ignore", "pipe", "pipe"];
  // libuv makes a "pipe" an AF_UNIX socketpair: bidirectional, as the protocol needs.
  if (spec.protocol) stdio.push("pipe");
  if (spec.protocol && spec.heartbeatFd !== null) stdio.push(spec.heartbeatFd);
  let child: ChildProcess;
  try {
    child = spawn(file, args, {
      cwd: spec.cwd ?? undefined,
      env: spec.env,
      stdio,
      // setsid(): the worker leads its own process group, so one kill(-pid)
      // reaches everything it forked.
      detached: true,
    });
  } catch (err) {
    // Bad arguments (e.g. a uid out of range) throw synchronously.
    return { ok: false, error: Promise.resolve((err as Error).message) };
  }
  // 'error' without 'spawn' means exec failed and 'exit' will never come.
  const failure = new Promise<string>((resolve) => child.once("error", (err) => resolve(err.message)));
  // A failed exec (ENOENT, EACCES) leaves pid undefined and emits 'error'
  // instead of 'exit'; the caller listens for 'error' for the reason.
  if (child.pid === undefined) return { ok: false, error: failure };
  const channel = spec.protocol ? (child.stdio[PROTOCOL_FD] as Socket | null) : null;
  return {
    ok: true,
    process: { child, pid: child.pid, stdout: child.stdout as Readable, stderr: child.stderr as Readable, channel },
  };
}

/** Sends `signal` to the whole process group led by `pid`; a group already gone is not an error. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  return sendSignal(-pid, signal);
}

export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  return sendSignal(pid, signal);
}

function sendSignal(target: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(target, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}
