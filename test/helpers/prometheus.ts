// Debian's real Prometheus server for the monitoring tests: on loopback, with
// its own configuration and TSDB in a temporary directory, asked everything
// over its HTTP API as a dashboard or Alertmanager would. Stopped by pid.
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { REPO } from "./repo.js";

export const RULES = join(REPO, "monitoring/vigil.rules.yml");
export const DASHBOARD = join(REPO, "monitoring/grafana-dashboard.json");

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}
export interface Alert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: "pending" | "firing";
}
export interface RuleStatus {
  name: string;
  health: string;
  lastError?: string;
  lastEvaluation: string;
}

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Scrapes and rule evaluations every second, so tests see changes quickly. */
const FAST = { scrape_interval: "1s", scrape_timeout: "1s", evaluation_interval: "1s" };

/** Debian's prometheus, on loopback, with its own config and TSDB in a temporary directory. */
export class Prometheus {
  readonly dir: string;
  readonly url: string;
  private readonly child: ChildProcess;
  private log = "";
  private readonly exited: Promise<void>;
  private alive = true;
  private waiters: Array<() => void> = [];

  /** `config` is prometheus.yml, less `global`; `files` are written beside it first (relative names). */
  private constructor(port: number, config: Record<string, unknown>, files: Record<string, string>, dir: string) {
    this.dir = dir;
    this.url = `http://127.0.0.1:${port}`;
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(this.dir, name)), { recursive: true });
      writeFileSync(join(this.dir, name), text);
    }
    writeFileSync(join(this.dir, "prometheus.yml"), stringify({ ...config, global: FAST }));
    this.child = spawn(
      "prometheus",
      [
        `--config.file=${join(this.dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(this.dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--web.enable-lifecycle",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    this.child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      this.log += chunk;
      this.wake();
    });
    this.exited = new Promise((done) =>
      this.child.once("close", () => {
        this.alive = false;
        this.wake();
        done();
      }),
    );
    this.child.once("error", (err) => {
      this.log += `spawn error: ${err.message} (Debian package prometheus)\n`;
      this.alive = false;
      this.wake();
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when Prometheus's log contains `text`; rejects if it exits first or after `timeoutMs`. */
  private waitForLog(text: string, timeoutMs: number): Promise<void> {
    return new Promise((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`prometheus did not log "${text}" within ${timeoutMs} ms:\n${this.log.slice(-2000)}`)), timeoutMs);
      const check = (): void => {
        if (this.log.includes(text)) {
          clearTimeout(timer);
          done();
        } else if (!this.alive) {
          clearTimeout(timer);
          fail(new Error(`prometheus exited:\n${this.log.slice(-2000)}`));
        } else {
          this.waiters.push(check);
        }
      };
      check();
    });
  }

  /** Starts a server scraping `metricsUrl` (vigild's) and resolves once it is ready. */
  static start(metricsUrl: string): Promise<Prometheus> {
    const target = new URL(metricsUrl).host;
    return Prometheus.startWith({ rule_files: [RULES], scrape_configs: [{ job_name: "vigil", static_configs: [{ targets: [target] }] }] });
  }

  /**
   * Starts a server with this configuration (its `global` is the test's: every
   * second). `dir` callbacks get the server's directory, for paths in the
   * configuration and the files written there before it starts.
   */
  static async startWith(config: Record<string, unknown> | ((dir: string) => Record<string, unknown>), files: Record<string, string> = {}): Promise<Prometheus> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "vigil-prometheus-"));
    const p = new Prometheus(port, typeof config === "function" ? config(dir) : config, files, dir);
    running.add(p);
    // It says so in its log when it is ready to serve; /-/ready confirms.
    await p.waitForLog("Server is ready to receive web requests", 20_000);
    const ready = await fetch(`${p.url}/-/ready`, { signal: AbortSignal.timeout(5_000) });
    expect(ready.status).to.equal(200);
    return p;
  }

  async api<T>(path: string): Promise<T> {
    const res = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(5_000) });
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== "success") throw new Error(`${path}: ${body.error ?? res.status}`);
    return body.data;
  }

  /** The label sets of the series `selector` matches now, as Grafana's label_values() asks for them. */
  async series(selector: string): Promise<Array<Record<string, string>>> {
    return this.api<Array<Record<string, string>>>(`/api/v1/series?match[]=${encodeURIComponent(selector)}&start=${Date.now() / 1000 - 60}`);
  }

  async query(expr: string): Promise<Sample[]> {
    const data = await this.api<{ resultType: string; result: Sample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
    return data.resultType === "vector" ? data.result : [];
  }

  /** Polls (Prometheus has no push) until `probe` returns something, at most `timeoutMs`. */
  async waitUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
    const until = Date.now() + timeoutMs;
    let last: unknown = undefined;
    for (;;) {
      try {
        const got = await probe();
        if (got !== undefined) return got;
      } catch (err) {
        last = err;
      }
      if (!this.alive) throw new Error(`prometheus exited while waiting for ${what}:\n${this.log.slice(-2000)}`);
      if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last instanceof Error ? last.message : JSON.stringify(last)})` : ""}`);
      await sleep(250);
    }
  }

  /** Waits until `expr` has a sample with a value for which `ok` holds; returns that value. */
  waitForValue(expr: string, ok: (v: number) => boolean, timeoutMs = 20_000): Promise<number> {
    return this.waitUntil(`${expr} to match`, async () => {
      const values = (await this.query(expr)).map((s) => Number(s.value[1]));
      return values.find(ok);
    }, timeoutMs);
  }

  alerts(): Promise<Alert[]> {
    return this.api<{ alerts: Alert[] }>("/api/v1/alerts").then((d) => d.alerts);
  }

  async rules(): Promise<RuleStatus[]> {
    const data = await this.api<{ groups: Array<{ rules: RuleStatus[] }> }>("/api/v1/rules");
    return data.groups.flatMap((g) => g.rules);
  }

  /** SIGTERM by pid, SIGKILL if it has not exited within 10 s; then its directory goes. */
  async stop(): Promise<void> {
    if (this.alive && this.child.pid !== undefined) {
      this.child.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const exited = await Promise.race([
        this.exited.then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 10_000))),
      ]);
      clearTimeout(timer);
      if (!exited) {
        this.child.kill("SIGKILL");
        await this.exited;
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
    running.delete(this);
  }
}


const running = new Set<Prometheus>();

/** Stops every server started here (afterEach). */
export async function stopAllPrometheus(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

/**
 * The dashboard's queries with Grafana's variables filled in as Grafana
 * would: `instance` and `program` as regular expressions (".*" is All).
 */
export function dashboardQueries(vars: { job?: string; instance?: string; program?: string } = {}): Array<{ title: string; expr: string }> {
  type Panel = { title: string; targets?: Array<{ expr?: string }>; panels?: Panel[] };
  const dash = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: Panel[] };
  const out: Array<{ title: string; expr: string }> = [];
  const walk = (panels: Panel[]): void => {
    for (const p of panels) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ title: p.title, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(dash.panels);
  return out.map(({ title, expr }) => ({
    title,
    expr: expr
      .replaceAll("$__rate_interval", "1m")
      .replaceAll("$__range", "1h")
      .replaceAll("$job", vars.job ?? "vigil")
      .replaceAll("$instance", vars.instance ?? ".*")
      .replaceAll("$program", vars.program ?? ".*"),
  }));
}
