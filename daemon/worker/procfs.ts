// What /proc says about a worker's process tree. Linux only, like vigil.
import { readFileSync, readdirSync } from "node:fs";

function read(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/** Direct children of `pid`, from every thread's children list (CONFIG_PROC_CHILDREN). */
export function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const tid of tasks) {
    const text = read(`/proc/${pid}/task/${tid}/children`);
    if (text) for (const c of text.trim().split(/\s+/)) if (c) out.push(Number(c));
  }
  return out;
}

/** `pid` and everything below it, even what left its process group with setsid(). */
export function processTree(pid: number, limit = 10_000): number[] {
  const seen = new Set<number>();
  const queue = [pid];
  while (queue.length > 0 && seen.size < limit) {
    const next = queue.shift()!;
    if (seen.has(next)) continue;
    seen.add(next);
    queue.push(...childrenOf(next));
  }
  return [...seen];
}

/** Resident memory of one process in bytes (VmRSS), 0 when it is gone. */
export function rssBytes(pid: number): number {
  const status = read(`/proc/${pid}/status`);
  const match = status ? /^VmRSS:\s+(\d+) kB$/m.exec(status) : null;
  return match ? Number(match[1]) * 1024 : 0;
}

export function treeRssBytes(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + rssBytes(p), 0);
}

export interface ProcessIdentity {
  pid: number;
  /** Start time in clock ticks since boot (/proc/PID/stat field 22): a reused pid has another. */
  start: string;
  pgid: number;
}

/** Who `pid` is right now, or null when it is gone or a zombie. */
export function identify(pid: number): ProcessIdentity | null {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return null;
  // The command name may contain spaces and parentheses: fields start after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const state = fields[0];
  if (state === "Z" || state === "X") return null;
  return { pid, pgid: Number(fields[2]), start: fields[19] ?? "" };
}

/** The live processes of a tree, with their identities, for finding them again later. */
export function snapshotTree(pid: number): ProcessIdentity[] {
  return processTree(pid)
    .map(identify)
    .filter((p): p is ProcessIdentity => p !== null);
}

/** Those of a snapshot still alive as the same processes (not a reused pid). */
export function survivors(snapshot: readonly ProcessIdentity[]): ProcessIdentity[] {
  return snapshot.filter((p) => {
    const now = identify(p.pid);
    return now !== null && now.start === p.start;
  });
}
