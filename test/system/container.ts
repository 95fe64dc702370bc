// A real systemd, booted in a throwaway container made from this host's /usr
// (docs/testing.md, "test/system"), for the system tests. A thin layer over the
// shell harness in scripts/systemd/: boot.sh boots it and stays in the
// foreground for as long as it lives, exec.sh runs a command inside,
// teardown.sh powers it off and kills systemd-nspawn by its pid.
//
//   const c = await start();          // boots; /src in the container is this repository
//   await c.install();                // bash /src/scripts/install.sh install (PREFIX=/usr/local)
//   const r = await c.exec(["systemctl", "is-active", "vigil"]);
//   await c.stop();                   // always, pass or fail
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";

export { REPO } from "../helpers/repo.js";
import { REPO } from "../helpers/repo.js";
const HARNESS = join(REPO, "scripts/systemd");
/** Where the repository is inside the container. */
export const SRC = "/src";

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  /** Default 60 s; past it the command is killed and exec rejects. */
  timeoutMs?: number;
}

export interface JournalOptions {
  /** Only entries after this cursor (from cursor()). */
  afterCursor?: string;
  /** journalctl -p, e.g. "warning". */
  priority?: string;
}

/** One journal entry, as `journalctl -o json` gives it. */
export interface JournalEntry {
  MESSAGE: string;
  PRIORITY?: string;
  SYSLOG_IDENTIFIER?: string;
  _PID?: string;
  __CURSOR: string;
  __MONOTONIC_TIMESTAMP?: string;
  [field: string]: unknown;
}

/** journald stores a message that is not valid UTF-8 as an array of bytes. */
function text(value: unknown): string {
  if (Array.isArray(value)) return Buffer.from(value as number[]).toString("utf8");
  if (value === undefined || value === null) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin")
    .split(delimiter)
    .some((dir) => dir !== "" && existsSync(join(dir, command)));
}

/** Why the system tests cannot run here, or null when they can. */
export function unavailableReason(): string | null {
  const missing = ["systemd-nspawn", "nsenter"].filter((c) => !onPath(c));
  const root = process.getuid?.() === 0;
  if (!root && missing.length > 0) return `not root, and ${missing.join(", ")} not installed (apt-get install systemd-container)`;
  if (!root) return "systemd-nspawn needs root";
  if (missing.length > 0) return `${missing.join(", ")} not installed (apt-get install systemd-container; make test does it as root)`;
  if (!existsSync(join(REPO, "dist/daemon/main.js"))) return "dist/ is not built (make build)";
  return null;
}

const live = new Set<Container>();
// Last resort: whatever ends this process, no container outlives it.
process.once("exit", () => {
  for (const c of live) c.stopSync();
});

export class Container {
  private exited: Promise<void>;
  private stopped = false;

  constructor(
    private readonly boot: ChildProcess,
    readonly nspawnPid: number,
    readonly leaderPid: number,
    readonly machine: string,
    readonly consoleLog: string,
  ) {
    this.exited = new Promise((done) => {
      if (boot.exitCode !== null || boot.signalCode !== null) done();
      else boot.once("exit", () => done());
    });
    live.add(this);
  }

  /** Runs argv inside the container as root with a clean environment; never rejects on a non-zero status. */
  exec(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    return new Promise((resolvePromise, reject) => {
      const child = spawn("bash", [join(HARNESS, "exec.sh"), String(this.leaderPid), ...argv], {
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      const timer = setTimeout(() => {
        if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
        reject(new Error(`timed out after ${timeoutMs} ms in the container: ${argv.join(" ")}\n${stdout}${stderr}`));
      }, timeoutMs);
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        resolvePromise({ code: code ?? (signal ? 128 : 1), stdout, stderr });
      });
      child.stdin.on("error", () => undefined);
      child.stdin.end(options.input ?? "");
    });
  }

  /** exec(["sh", "-c", script]). */
  sh(script: string, options: ExecOptions = {}): Promise<ExecResult> {
    return this.exec(["sh", "-c", script], options);
  }

  /** Like exec, but rejects with everything printed unless the status is 0. */
  async run(argv: readonly string[], options: ExecOptions = {}): Promise<string> {
    const r = await this.exec(argv, options);
    if (r.code !== 0) throw new Error(`in the container: ${argv.join(" ")} exited with ${r.code}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  }

  /** Writes a file inside the container (parents created). */
  async writeFile(path: string, content: string): Promise<void> {
    await this.run(["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "sh", path], { input: content });
  }

  /** The journal's current end, for journal({ afterCursor }). */
  async cursor(): Promise<string> {
    const out = await this.run(["journalctl", "--no-pager", "-n", "0", "--show-cursor", "-q"]);
    const match = /-- cursor: (\S+)/.exec(out);
    if (!match) throw new Error(`no cursor in: ${out}`);
    return match[1]!;
  }

  /**
   * `journalctl -u UNIT [-p PRIORITY]` after a cursor, as entries: systemd's
   * messages about the unit and everything the unit's processes logged.
   *
   * journalctl 252's --after-cursor skips the first *matching* entry when the
   * cursor's own entry does not match -u/-p, so this asks for --cursor
   * (inclusive) and drops the cursor's entry itself.
   */
  async journalEntries(unit: string, options: JournalOptions = {}): Promise<JournalEntry[]> {
    const argv = ["journalctl", "--no-pager", "-q", "-o", "json", "-u", unit];
    if (options.afterCursor) argv.push(`--cursor=${options.afterCursor}`);
    if (options.priority) argv.push("-p", options.priority);
    const r = await this.exec(argv);
    if (r.code !== 0) throw new Error(`${argv.join(" ")}: exit ${r.code}: ${r.stderr}`);
    return r.stdout
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as JournalEntry)
      .filter((e) => e.__CURSOR !== options.afterCursor)
      .map((e) => ({ ...e, MESSAGE: text(e.MESSAGE) }));
  }

  /** journalEntries() as text, one `[monotonic s] identifier[pid]: message` line each. */
  async journal(unit: string, options: JournalOptions = {}): Promise<string> {
    const entries = await this.journalEntries(unit, options);
    return entries
      .map((e) => {
        const mono = (Number(e.__MONOTONIC_TIMESTAMP ?? 0) / 1e6).toFixed(6);
        return `[${mono}] ${e.SYSLOG_IDENTIFIER ?? "?"}[${e._PID ?? "?"}]: ${e.MESSAGE}\n`;
      })
      .join("");
  }

  /**
   * The last `max` lines of `journalctl -u UNIT -o cat` that match the
   * extended regular expression `pattern`, filtered inside the container: a
   * unit whose workers flood the journal must not be read whole.
   */
  async journalGrep(unit: string, pattern: string, max = 50): Promise<string[]> {
    const r = await this.exec(["sh", "-c", 'journalctl --no-pager -q -o cat -u "$1" | grep -E -e "$2" | tail -n "$3"', "sh", unit, pattern, String(max)], {
      timeoutMs: 120_000,
    });
    return r.stdout.split("\n").filter((line) => line !== "");
  }

  /** `systemctl show -p A,B UNIT` as an object. */
  async show(unit: string, properties: readonly string[]): Promise<Record<string, string>> {
    const out = await this.run(["systemctl", "show", "-p", properties.join(","), unit]);
    const result: Record<string, string> = {};
    for (const line of out.split("\n")) {
      const eq = line.indexOf("=");
      if (eq > 0) result[line.slice(0, eq)] = line.slice(eq + 1);
    }
    return result;
  }

  /** bash /src/scripts/install.sh install, as `make install` would run it (the tree is built on the host). */
  async install(env: Record<string, string> = {}): Promise<string> {
    const vars = Object.entries({ PREFIX: "/usr/local", ...env }).map(([k, v]) => `${k}=${v}`);
    return this.run(["env", ...vars, "bash", `${SRC}/scripts/install.sh`, "install"], { timeoutMs: 120_000 });
  }

  /** Powers the container off and waits until systemd-nspawn is gone. */
  async stop(): Promise<void> {
    if (this.stopped) return this.exited;
    this.stopped = true;
    if (this.boot.pid !== undefined && this.boot.exitCode === null && this.boot.signalCode === null) {
      // boot.sh powers the container off on SIGTERM and waits for it (bounded by teardown.sh).
      process.kill(this.boot.pid, "SIGTERM");
    }
    let timer: NodeJS.Timeout | undefined;
    const gone = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((done) => (timer = setTimeout(() => done(false), 45_000))),
    ]);
    clearTimeout(timer);
    if (!gone) this.stopSync();
    live.delete(this);
  }

  /** Synchronous teardown for process exit: teardown.sh, then boot.sh killed by its pid. */
  stopSync(): void {
    spawnSync("bash", [join(HARNESS, "teardown.sh"), String(this.nspawnPid), String(this.leaderPid)], {
      stdio: "ignore",
      timeout: 40_000,
    });
    if (this.boot.pid !== undefined && this.boot.exitCode === null && this.boot.signalCode === null) {
      try {
        process.kill(this.boot.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    live.delete(this);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

export interface StartOptions {
  bootTimeoutMs?: number;
  /**
   * "volatile" (default): an empty root with this host's /usr read-only and a
   * writable /usr/local, for make install. "overlay": this host's /usr, /etc
   * and /var through throwaway writable layers, so apt and dpkg work as here
   * (boot.sh, VIGIL_CONTAINER_ROOT).
   */
  root?: "volatile" | "overlay";
}

/**
 * Boots the container; rejects (with the harness's output) when it does not
 * come up. A boot that fails is tried once more, with the first failure
 * printed: the boot is the harness, not the behaviour under test, and one
 * in a few hundred boots on a loaded machine has been seen to stall.
 */
export async function start(options: StartOptions = {}): Promise<Container> {
  try {
    return await bootOnce(options);
  } catch (first) {
    const why = first instanceof Error ? first.message : String(first);
    console.error(`    systemd harness: first boot failed, booting a new container once more:\n${why.replace(/^/gm, "      ")}`);
    return bootOnce(options);
  }
}

function bootOnce(options: StartOptions): Promise<Container> {
  const timeoutMs = options.bootTimeoutMs ?? 90_000;
  const boot = spawn("bash", [join(HARNESS, "boot.sh"), REPO], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, VIGIL_BOOT_TIMEOUT: String(Math.ceil(timeoutMs / 1000)), VIGIL_CONTAINER_ROOT: options.root ?? "volatile" },
  });
  let stdout = "";
  let stderr = "";
  boot.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((done) => boot.once("exit", () => done()));
  return new Promise((resolvePromise, reject) => {
    let failed = false;
    const fail = (why: string) => {
      if (failed) return;
      failed = true;
      clearTimeout(timer);
      if (boot.exitCode === null && boot.signalCode === null && boot.pid !== undefined) process.kill(boot.pid, "SIGTERM");
      // boot.sh tears the container down and prints what it found before it
      // ends; wait for that (bounded by teardown.sh's own limits).
      let waitTimer: NodeJS.Timeout | undefined;
      void Promise.race([exited, new Promise<void>((done) => (waitTimer = setTimeout(done, 60_000)))]).then(() => {
        clearTimeout(waitTimer);
        reject(new Error(`the systemd container did not boot: ${why}\n${stderr}`));
      });
    };
    const timer = setTimeout(() => fail(`no READY=1 after ${timeoutMs + 10_000} ms`), timeoutMs + 10_000);
    boot.once("exit", (code, signal) => fail(`boot.sh exited (${code ?? signal})`));
    boot.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      if (failed || !/^READY=1$/m.test(stdout)) return;
      clearTimeout(timer);
      boot.removeAllListeners("exit");
      const vars = Object.fromEntries(
        stdout
          .split("\n")
          .map((line) => /^([A-Z_]+)=(.*)$/.exec(line))
          .filter((m): m is RegExpExecArray => m !== null)
          .map((m) => [m[1]!, m[2]!]),
      );
      resolvePromise(new Container(boot, Number(vars.NSPAWN_PID), Number(vars.LEADER_PID), vars.MACHINE ?? "", vars.LOG ?? ""));
    });
  });
}

/**
 * One container for the calling describe(): booted with vigil installed
 * before its tests, powered off after them. Skipped with the reason printed
 * where systemd-nspawn cannot run; under CI (CI=true) that is a failure.
 */
export function containerForSuite(): () => Container {
  let c: Container | null = null;
  before(async function () {
    this.timeout(420_000); // two boots at most (start()), then make install
    const reason = unavailableReason();
    if (reason) {
      if (process.env.CI === "true") throw new Error(`the system tests must run under CI, but: ${reason}`);
      console.log(`    system tests skipped: ${reason}`);
      this.skip();
    }
    c = await start();
    await c.install();
  });
  after(async function () {
    this.timeout(60_000);
    await c?.stop();
  });
  return () => {
    if (!c) throw new Error("no container");
    return c;
  };
}
