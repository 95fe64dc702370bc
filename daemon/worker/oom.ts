// Was that SIGKILL the kernel's OOM killer? cgroup v2 counts OOM kills in
// memory.events of vigild's own cgroup (its unit's, under systemd); a worker
// dying of a SIGKILL that vigild did not send, while that count went up, was
// OOM-killed.
import { readFileSync } from "node:fs";

export function ownCgroupEventsFile(procSelfCgroup = "/proc/self/cgroup"): string | null {
  try {
    const line = readFileSync(procSelfCgroup, "utf8")
      .split("\n")
      .find((l) => l.startsWith("0::"));
    return line ? `/sys/fs/cgroup${line.slice(3)}/memory.events` : null;
  } catch {
    return null;
  }
}

export function parseOomKills(memoryEvents: string): number | null {
  const match = /^oom_kill (\d+)$/m.exec(memoryEvents);
  return match ? Number(match[1]) : null;
}

export class OomCounter {
  private last: number | null;

  constructor(private readonly file: string | null = ownCgroupEventsFile()) {
    this.last = this.read();
  }

  private read(): number | null {
    if (this.file === null) return null;
    try {
      return parseOomKills(readFileSync(this.file, "utf8"));
    } catch {
      return null;
    }
  }

  /** True when an OOM kill happened in vigild's cgroup since the last call. */
  consume(): boolean {
    const now = this.read();
    const seen = now !== null && this.last !== null && now > this.last;
    if (now !== null) this.last = now;
    return seen;
  }
}
