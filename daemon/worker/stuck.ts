// Where in the kernel a process that ignores SIGKILL is waiting: what an
// operator needs to find the dead mount or the frozen cgroup that holds it.
import { readFileSync } from "node:fs";
import { schedulerState } from "./starvation.js";

export interface StuckProcess {
  /** Scheduler state from /proc/<pid>/stat: D for uninterruptible sleep; null when gone. */
  state: string | null;
  /** The kernel function it sleeps in (e.g. __refrigerator for a frozen cgroup, an nfs_ one for NFS); null when unknown. */
  wchan: string | null;
}

export function whereStuck(pid: number): StuckProcess {
  return { state: schedulerState(pid), wchan: kernelWait(pid) };
}

function kernelWait(pid: number): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/wchan`, "utf8").trim();
    // "0": running, or the kernel hides it (kptr_restrict).
    return text === "" || text === "0" ? null : text;
  } catch {
    return null;
  }
}
