// vigild runs with a lowered OOM score (OOMScoreAdjust= in its unit) so that,
// when memory runs out, the kernel's OOM killer takes a worker, which vigild
// restarts with reason oom, rather than vigild, whose end takes every worker
// down with it. A child inherits its parent's score, so each worker is given
// back the kernel's default right after it is spawned; raising a score needs
// no privilege, so this works for `user:` workers too.
import fs from "node:fs";

/** The kernel's default, what every worker runs with. */
export const WORKER_OOM_SCORE_ADJ = 0;

/** A process's oom_score_adj as /proc says it; null where it cannot be read. */
export function readOomScoreAdj(pid: number | "self"): number | null {
  try {
    const value = Number(fs.readFileSync(`/proc/${pid}/oom_score_adj`, "utf8").trim());
    return Number.isInteger(value) ? value : null;
  } catch {
    return null;
  }
}

/** Whether a worker of a vigild whose score is `own` needs its own set back. */
export function workerNeedsOwnScore(own: number | null): boolean {
  return own !== null && own < WORKER_OOM_SCORE_ADJ;
}

/**
 * How a worker gets its score: none needed; set by vigild on the spawned
 * process (which vigild's uid owns); or, for a `user:` worker that may have
 * switched users before vigild could write, by util-linux's choom as root in
 * front of setpriv.
 */
export type OomScorePlan = { kind: "inherit" } | { kind: "set-after-spawn"; value: number } | { kind: "choom"; value: number };

export function oomScorePlan(own: number | null, dropsPrivileges: boolean): OomScorePlan {
  if (!workerNeedsOwnScore(own)) return { kind: "inherit" };
  return dropsPrivileges ? { kind: "choom", value: WORKER_OOM_SCORE_ADJ } : { kind: "set-after-spawn", value: WORKER_OOM_SCORE_ADJ };
}

export const CHOOM = "/usr/bin/choom";

/** `command` run by choom with oom_score_adj `value`. */
export function withOomScore(command: readonly string[], value: number): string[] {
  return [CHOOM, "-n", String(value), "--", ...command];
}

/** Sets `pid`'s oom_score_adj; the reason when that fails, null otherwise (a process already gone is no failure). */
export function setWorkerOomScore(pid: number, value: number): string | null {
  try {
    fs.writeFileSync(`/proc/${pid}/oom_score_adj`, `${value}\n`);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ESRCH") return null;
    return (err as Error).message;
  }
}
