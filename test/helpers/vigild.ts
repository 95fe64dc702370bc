// A real vigild for tests: started from dist/ with a configuration written to
// a temporary directory, its JSON log parsed line by line, its metrics
// scraped over HTTP. Every process it or its workers started is killed by
// pid in stopAll(), pass or fail.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";

import { FIXTURES, REPO, VIGILD } from "./repo.js";

export { FIXTURES, REPO, VIGILD };

export type LogEntry = { time: string; level: string; msg: string } & Record<string, unknown>;

const running = new Set<Vigild>();

export interface VigildOptions {
  env?: Record<string, string>;
  /** Log format for the run; tests parse JSON. */
  format?: "json" | "journal" | "text";
}

export class Vigild {
  readonly dir: string;
  readonly configPath: string;
  readonly child: ChildProcess;
  readonly logs: LogEntry[] = [];
  readonly rawLines: string[] = [];
  stderr = "";
  readonly workerPids = new Set<number>();
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  private readonly exited: Promise<void>;
  private waiters: Array<() => void> = [];

  constructor(config: Record<string, unknown>, options: VigildOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "vigil-test-"));
    this.configPath = join(this.dir, "vigil.yaml");
    const full = {
      metrics: { listen: "127.0.0.1:0" },
      log: { level: "debug", format: options.format ?? "json" },
      dbus: { bus: "none" },
      state_dir: join(this.dir, "state"),
      ...config,
    };
    writeFileSync(this.configPath, stringify(full));
    this.child = spawn(process.execPath, [VIGILD, "--config", this.configPath], {
      cwd: REPO,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(this);
    let pending = "";
    this.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf("\n")) !== -1) {
        this.onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    });
    this.child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((done) =>
      this.child.once("exit", (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        this.wake();
        done();
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  private onLine(line: string): void {
    this.rawLines.push(line);
    try {
      const entry = JSON.parse(line) as LogEntry;
      this.logs.push(entry);
      if (entry.msg.endsWith(" spawned") && typeof entry.pid === "number") this.workerPids.add(entry.pid);
    } catch {
      // Not JSON: a non-json format run; rawLines has it.
    }
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves with the first log entry (past or future) that matches; rejects after `timeoutMs`. */
  waitFor(match: (e: LogEntry) => boolean, timeoutMs = 10_000, what = "a matching log line"): Promise<LogEntry> {
    return this.waitUntil(() => this.logs.find(match), timeoutMs, what);
  }

  /** Resolves once `count` entries match. */
  async waitForCount(match: (e: LogEntry) => boolean, count: number, timeoutMs = 10_000, what = "log lines"): Promise<LogEntry[]> {
    await this.waitUntil(() => (this.logs.filter(match).length >= count ? true : undefined), timeoutMs, `${count} ${what}`);
    return this.logs.filter(match);
  }

  waitUntil<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; log tail:\n${this.tail()}`));
      }, timeoutMs);
      const check = (): void => {
        const found = probe();
        if (found !== undefined) {
          clearTimeout(timer);
          resolvePromise(found);
        } else if (this.exitCode !== null || this.exitSignal !== null) {
          clearTimeout(timer);
          reject(new Error(`vigild exited (${this.exitCode ?? this.exitSignal}) before ${what}; log tail:\n${this.tail()}`));
        } else {
          this.waiters.push(check);
        }
      };
      check();
    });
  }

  tail(n = 25): string {
    return [...this.rawLines.slice(-n), this.stderr ? `stderr: ${this.stderr}` : ""].join("\n");
  }

  async metricsUrl(): Promise<string> {
    const entry = await this.waitFor((e) => typeof e.address === "string" && e.msg.startsWith("metrics on"), 10_000, "the metrics address");
    return entry.address as string;
  }

  async scrape(): Promise<string> {
    const res = await fetch(await this.metricsUrl());
    return res.text();
  }

  /** The value of one sample, e.g. metric('vigil_workers', {program: 'web', state: 'running'}). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return sampleValue(await this.scrape(), name, labels);
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  async waitExit(timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    await this.waitUntilExit(timeoutMs);
    return { code: this.exitCode, signal: this.exitSignal };
  }

  private async waitUntilExit(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.exited,
      new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`vigild did not exit within ${timeoutMs} ms; log tail:\n${this.tail()}`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /** Kills vigild and every worker it started; removes the temporary directory. */
  async kill(): Promise<void> {
    if (this.exitCode === null && this.exitSignal === null) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
    for (const pid of this.workerPids) killGroup(pid);
    rmSync(this.dir, { recursive: true, force: true });
    running.delete(this);
  }
}

export function killGroup(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((v) => v.kill()));
}

export function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return NaN;
}

/** Whether a pid is a live process (a zombie counts as dead: PID 1 here may not reap). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

export async function waitDead(pid: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !isAlive(pid);
}

export function py(fixture: string, ...args: string[]): string[] {
  return ["python3", join(FIXTURES, fixture), ...args];
}

export function nodeWorker(fixture: string, ...args: string[]): string[] {
  return [process.execPath, join(FIXTURES, fixture), ...args];
}
