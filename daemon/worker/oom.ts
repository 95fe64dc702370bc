// Was that SIGKILL the kernel's OOM killer? The kernel counts OOM kills per
// memory cgroup: cgroup v2 in memory.events (oom_kill, counting the cgroups
// below too), cgroup v1 in memory.oom_control (oom_kill, that cgroup's own
// processes only). Workers live in vigild's own cgroup (its unit's, under
// systemd), so vigild reads its own cgroup's count.
//
// The count says how many processes were killed, not which: every kill
// it shows is one OOM kill to hand out, and each worker that died of a
// SIGKILL vigild did not send takes one. Two workers killed at once are then
// both `oom`, whichever end is handled first; a kill -9 while the count did
// not move stays `crash`. A kill nobody took (the OOM killer chose a worker's
// child, which vigild does not see die) is dropped after a while, so that a
// later kill -9 is not taken for it.
import { readFileSync } from "node:fs";

/** How long an OOM kill waits for the worker it killed to be seen dead. */
export const OOM_KILL_MATCH_MS = 10_000;
/** More kills than this between two looks are not all workers: keep the newest. */
const MAX_UNMATCHED = 64;

/** Mount points in mountinfo escape space, tab, newline and backslash as octal. */
function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

interface CgroupMount {
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

function parseMountinfo(mountinfo: string): CgroupMount[] {
  return mountinfo
    .split("\n")
    .map((line) => {
      const [left, right] = line.split(" - ");
      if (left === undefined || right === undefined) return null;
      const fields = left.split(" ");
      const [fsType, , superOptions] = right.split(" ");
      if (fields.length < 5 || fsType === undefined) return null;
      return { root: unescapeMount(fields[3]!), mountPoint: unescapeMount(fields[4]!), fsType, superOptions: (superOptions ?? "").split(",") };
    })
    .filter((m): m is CgroupMount => m !== null && (m.fsType === "cgroup" || m.fsType === "cgroup2"));
}

/** `path` as seen under a mount of `root`, or null when the mount does not show it. */
function under(mount: CgroupMount, path: string): string | null {
  if (mount.root === "/") return `${mount.mountPoint.replace(/\/$/, "")}${path === "/" ? "" : path}`;
  if (path === mount.root) return mount.mountPoint;
  return path.startsWith(`${mount.root}/`) ? `${mount.mountPoint}${path.slice(mount.root.length)}` : null;
}

/**
 * The file holding the OOM-kill count of the cgroup in `procSelfCgroup`
 * (/proc/self/cgroup's text), found through `mountinfo`
 * (/proc/self/mountinfo's): the v1 memory controller's memory.oom_control
 * when memory is on a v1 hierarchy (hybrid hosts), else memory.events of the
 * v2 cgroup. Null when neither is mounted.
 */
export function oomCountFile(procSelfCgroup: string, mountinfo: string): string | null {
  const lines = procSelfCgroup
    .split("\n")
    .map((l) => /^(\d+):([^:]*):(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null);
  const mounts = parseMountinfo(mountinfo);
  const v1 = lines.find((m) => m[1] !== "0" && m[2]!.split(",").includes("memory"));
  if (v1) {
    const mount = mounts.find((m) => m.fsType === "cgroup" && m.superOptions.includes("memory"));
    const dir = mount ? under(mount, v1[3]!) : null;
    return dir === null ? null : `${dir}/memory.oom_control`;
  }
  const v2 = lines.find((m) => m[1] === "0" && m[2] === "");
  const mount = mounts.find((m) => m.fsType === "cgroup2");
  const dir = v2 && mount ? under(mount, v2[3]!) : null;
  return dir === null ? null : `${dir}/memory.events`;
}

/** oomCountFile() of this process; null when /proc cannot be read. */
export function ownOomCountFile(procSelf = "/proc/self"): string | null {
  try {
    return oomCountFile(readFileSync(`${procSelf}/cgroup`, "utf8"), readFileSync(`${procSelf}/mountinfo`, "utf8"));
  } catch {
    return null;
  }
}

/** The `oom_kill N` line of memory.events (v2) or memory.oom_control (v1). */
export function parseOomKills(text: string): number | null {
  const match = /^oom_kill (\d+)$/m.exec(text);
  return match ? Number(match[1]) : null;
}

/** Reads the count from `file` on every call; null when it cannot. */
export function oomCountReader(file: string | null): () => number | null {
  return () => {
    if (file === null) return null;
    try {
      return parseOomKills(readFileSync(file, "utf8"));
    } catch {
      return null;
    }
  };
}

export interface OomLedger {
  /** The count at the last reading; null until one succeeded. */
  readonly seen: number | null;
  /** When each OOM kill not yet matched to a dead worker was first seen, oldest first. */
  readonly unmatched: readonly number[];
}

/**
 * One worker ended: `count` is the OOM-kill count read just now (null when
 * unreadable), `killedFromOutside` whether the worker died of a SIGKILL
 * vigild did not send. Whether that worker was OOM-killed, and the ledger after.
 */
export function attributeOomKill(
  ledger: OomLedger,
  count: number | null,
  killedFromOutside: boolean,
  now: number,
  matchMs = OOM_KILL_MATCH_MS,
): { oomKilled: boolean; ledger: OomLedger } {
  let unmatched = ledger.unmatched.filter((seenAt) => now - seenAt <= matchMs);
  let seen = ledger.seen;
  if (count !== null) {
    // A count that went down is another cgroup's (vigild was moved): start over from it.
    if (seen !== null && count > seen) unmatched = [...unmatched, ...new Array<number>(Math.min(count - seen, MAX_UNMATCHED)).fill(now)];
    seen = count;
  }
  unmatched = unmatched.slice(-MAX_UNMATCHED);
  if (!killedFromOutside || unmatched.length === 0) return { oomKilled: false, ledger: { seen, unmatched } };
  return { oomKilled: true, ledger: { seen, unmatched: unmatched.slice(1) } };
}

/** The ledger over vigild's own cgroup (or the count `read` gives, in tests). */
export class OomKills {
  private ledger: OomLedger;

  constructor(private readonly read: () => number | null = oomCountReader(ownOomCountFile())) {
    this.ledger = { seen: read(), unmatched: [] };
  }

  /**
   * Called for every worker that ended unasked, so that kills of processes
   * that are not workers are seen (and age) early. The kernel counts a kill
   * as it sends the SIGKILL, long before the victim has freed its memory and
   * been reaped, so the count is up by the time its end is handled.
   */
  attribute(killedFromOutside: boolean, now: number): boolean {
    const result = attributeOomKill(this.ledger, this.read(), killedFromOutside, now);
    this.ledger = result.ledger;
    return result.oomKilled;
  }
}
