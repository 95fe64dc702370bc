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
