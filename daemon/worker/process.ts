// Spawning and signalling worker processes: the one module that knows Node's
// child_process traps.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import type { Socket } from "node:net";

export interface SpawnSpec {
  command: readonly string[];
  cwd: string | null;
  env: Record<string, string>;
  /** Listening sockets, inherited as fds 3, 4, ... (sd_listen_fds(3)). */
  listenFds: readonly number[];
  /** Give the worker a protocol socket, on the fd after the listening sockets. */
  protocol: boolean;
  /** Inherited on the fd after the protocol socket when set (the shared heartbeat file). */
  heartbeatFd: number | null;
  /** Written to the spawned process's oom_score_adj at once when set (oom-score.ts). */
  oomScoreAdj: number | null;
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

/** The first fd after stdio; listening sockets come first, as systemd passes them. */
export const FIRST_FD = 3;

/** Where the worker finds its protocol socket and heartbeat file, behind `listening` sockets. */
export function workerFds(listening: number): { protocol: number; heartbeat: number } {
  return { protocol: FIRST_FD + listening, heartbeat: FIRST_FD + listening + 1 };
}

export function spawnWorker(spec: SpawnSpec): SpawnResult {
  const [file, ...args] = spec.command;
  if (file === undefined) return { ok: false, error: Promise.resolve("empty command") };
  // Node's spawn puts stdio[i] on the child's fd i.
  const stdio: Array<"ignore" | "pipe" | number> = ["ignore", "pipe", "pipe", ...spec.listenFds];
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
  const channel = spec.protocol ? (child.stdio[workerFds(spec.listenFds.length).protocol] as Socket | null) : null;
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

/**
 * What execvp(3) would fail with for `file`, as Node words it ("spawn FILE
 * ENOENT"), or null when it would run. A worker that runs behind a wrapper
 * (the shell that sets LISTEN_PID, systemd-cat) would otherwise report a
 * missing program as the wrapper's exit status, and vigild would retry it
 * instead of failing the program at once.
 */
export function execError(file: string, cwd: string | null, pathEnv: string): string | null {
  const runnable = (candidate: string): "ok" | "ENOENT" | "EACCES" => {
    try {
      if (!fs.statSync(candidate).isFile()) return "EACCES";
      fs.accessSync(candidate, fs.constants.X_OK);
      return "ok";
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "ENOENT" ? "ENOENT" : "EACCES";
    }
  };
  if (file.includes("/")) {
    const verdict = runnable(path.resolve(cwd ?? process.cwd(), file));
    return verdict === "ok" ? null : `spawn ${file} ${verdict}`;
  }
  let verdict: "ok" | "ENOENT" | "EACCES" = "ENOENT";
  for (const dir of pathEnv.split(":")) {
    if (!dir) continue;
    const found = runnable(path.join(dir, file));
    if (found === "ok") return null;
    if (found === "EACCES") verdict = "EACCES";
  }
  return `spawn ${file} ${verdict}`;
}
