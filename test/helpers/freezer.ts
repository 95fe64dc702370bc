// A cgroup v1 freezer for tests: a real process, frozen, holds even SIGKILL
// until it is thawed (it sleeps in the kernel's __refrigerator, state D), as
// a process stuck on a dead NFS server or an unanswering FUSE mount does.
// The cgroup v2 freezer lets fatal signals through, so only v1 can do this.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const FREEZER_ROOT = "/sys/fs/cgroup/freezer";

let made = 0;

/** Why no frozen cgroup can be made here, or null when it can. */
export function freezerUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "creating a freezer cgroup needs root, and this test is not root";
  if (!existsSync(join(FREEZER_ROOT, "cgroup.procs"))) {
    return `no cgroup v1 freezer hierarchy at ${FREEZER_ROOT} (a cgroup v2-only host: its freezer lets SIGKILL through)`;
  }
  try {
    const probe = Freezer.create("probe");
    probe.remove();
  } catch (err) {
    return `cannot create a cgroup under ${FREEZER_ROOT}: ${(err as Error).message}`;
  }
  return null;
}

export class Freezer {
  private removed = false;

  private constructor(readonly dir: string) {}

  static create(what: string): Freezer {
    const dir = join(FREEZER_ROOT, `vigil-test-${process.pid}-${what}-${made++}`);
    mkdirSync(dir);
    const freezer = new Freezer(dir);
    // A hierarchy without the freezer controller would have no freezer.state.
    if (!existsSync(join(dir, "freezer.state"))) {
      freezer.remove();
      throw new Error(`${dir} has no freezer.state`);
    }
    return freezer;
  }

  get state(): string {
    return readFileSync(join(this.dir, "freezer.state"), "utf8").trim();
  }

  pids(): number[] {
    return readFileSync(join(this.dir, "cgroup.procs"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map(Number);
  }

  /** Moves a process, all its threads, into this cgroup; what it forks later follows. */
  add(pid: number): void {
    writeFileSync(join(this.dir, "cgroup.procs"), `${pid}\n`);
  }

  /** Freezes every task and waits until the kernel says FROZEN (FREEZING until then). */
  async freeze(timeoutMs = 5000): Promise<void> {
    writeFileSync(join(this.dir, "freezer.state"), "FROZEN\n");
    await this.until("FROZEN", timeoutMs);
  }

  async thaw(timeoutMs = 5000): Promise<void> {
    writeFileSync(join(this.dir, "freezer.state"), "THAWED\n");
    await this.until("THAWED", timeoutMs);
  }

  /** Thaws and removes the cgroup; its processes must be gone (rmdir fails with EBUSY otherwise). */
  remove(): void {
    if (this.removed) return;
    try {
      writeFileSync(join(this.dir, "freezer.state"), "THAWED\n");
    } catch {
      // Already gone.
    }
    rmdirSync(this.dir);
    this.removed = true;
  }

  private async until(state: string, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.state !== state) {
      if (Date.now() > until) throw new Error(`${this.dir}: freezer.state is ${this.state}, not ${state}, after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** The scheduler state letter of a process (D while frozen), or null when it is gone. */
export function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return null;
  }
}

/** One variable of a process's environment, as it was at exec. */
export function environOf(pid: number, name: string): string | null {
  const entries = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
  const hit = entries.find((e) => e.startsWith(`${name}=`));
  return hit === undefined ? null : hit.slice(name.length + 1);
}
