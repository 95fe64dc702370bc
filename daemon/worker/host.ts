// The operating system as a worker and its program see it: spawning,
// signals, and what /proc says about a process. Production uses realHost;
// tests pass a fake with fake processes, so the Worker and Program edges run
// under a fake clock without forking anything.
import type { Duplex, Readable } from "node:stream";
import { resolveUser, type UserLookup } from "../config/users.js";
import { readOomScoreAdj, setWorkerOomScore } from "./oom-score.js";
import { execError, signalGroup, signalProcess, spawnWorker, type SpawnSpec } from "./process.js";
import { snapshotTree, survivors, treeRssBytes, type ProcessIdentity } from "./procfs.js";
import { cpuPressure, schedulerState } from "./starvation.js";
import { whereStuck, type StuckProcess } from "./stuck.js";

/** What vigild holds of a running child: its exit, its pipes, its protocol socket. */
export interface HostProcess {
  pid: number;
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void;
  /** Stop holding vigild's event loop open for this child (one vigild gave up on). */
  unref(): void;
  stdout: Readable;
  stderr: Readable;
  channel: Duplex | null;
}

/** A failed spawn's reason arrives asynchronously, as Node reports it. */
export type HostSpawnResult = { ok: true; process: HostProcess } | { ok: false; error: Promise<string> };

export interface Host {
  spawn(spec: SpawnSpec): HostSpawnResult;
  /** Signals the process group `pid` leads; false when it is gone. */
  signalGroup(pid: number, signal: NodeJS.Signals): boolean;
  signalProcess(pid: number, signal: NodeJS.Signals): boolean;
  /** Why `file` could not be executed, as execvp(3) would fail; null when it can. */
  execError(file: string, cwd: string | null, pathEnv: string): string | null;
  resolveUser(user: string): UserLookup;
  uid(): number | undefined;
  /** vigild's own oom_score_adj; null where /proc does not say. */
  ownOomScoreAdj(): number | null;
  snapshotTree(pid: number): ProcessIdentity[];
  survivors(tree: readonly ProcessIdentity[]): ProcessIdentity[];
  treeRssBytes(pid: number): number;
  /** The host's CPU pressure (PSI some avg10, %); null without PSI. */
  cpuPressure(): number | null;
  schedulerState(pid: number): string | null;
  whereStuck(pid: number): StuckProcess;
}

/** vigild's own OOM score, read once: systemd sets it before exec and nothing changes it later. */
let ownOomScore: number | null | undefined;
let oomScoreFailureSaid = false;

function setOomScore(pid: number, value: number, own: number | null): void {
  const failure = setWorkerOomScore(pid, value);
  if (failure === null || oomScoreFailureSaid) return;
  // Said once: such a worker keeps vigild's lower score, which is safe, only less apt.
  oomScoreFailureSaid = true;
  process.stderr.write(`vigild: cannot set a worker's oom_score_adj (${failure}); it keeps vigild's ${String(own)}\n`);
}

export const realHost: Host = {
  spawn(spec) {
    const result = spawnWorker(spec);
    if (!result.ok) return result;
    const { child, pid, stdout, stderr, channel } = result.process;
    if (spec.oomScoreAdj !== null) setOomScore(pid, spec.oomScoreAdj, realHost.ownOomScoreAdj());
    return {
      ok: true,
      process: {
        pid,
        // 'exit', not 'close': a grandchild holding stdout open must not delay the verdict.
        onExit: (listener) => void child.once("exit", listener),
        unref: () => child.unref(),
        stdout,
        stderr,
        channel,
      },
    };
  },
  signalGroup,
  signalProcess,
  execError,
  resolveUser: (user) => resolveUser(user),
  uid: () => process.getuid?.(),
  ownOomScoreAdj: () => (ownOomScore ??= readOomScoreAdj("self")),
  snapshotTree,
  survivors,
  treeRssBytes,
  cpuPressure: () => cpuPressure(),
  schedulerState,
  whereStuck,
};
