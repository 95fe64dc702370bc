// vigild as the bench runs it: a JSON configuration in a scratch folder, its
// JSON log on stdout, read line by line (see ../runners.mjs for the interface).
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { COUNT_LINES, HOST, LINE_BYTES, LineProcess, PATH, PY_BENCH, PY_FLOOD, REPO, VIGILD, counter, scratch } from "../proc.mjs";
import { children, poll, trackPid, within } from "../util.mjs";
import { NODE_FIXTURE, freePort } from "../web.mjs";
import { GUNICORN_SHUTDOWN, gunicorn } from "./gunicorn.mjs";

const ms = (x) => `${x}ms`;

export class Vigild extends LineProcess {
  /** programs: vigil.yaml's `programs` mapping; extra: other top-level keys. */
  constructor(programs, extra = {}) {
    const dir = scratch("vigild");
    const config = {
      metrics: { listen: "127.0.0.1:0" },
      log: { level: "info", format: "json" },
      dbus: { bus: "none" },
      state_dir: join(dir, "state"),
      ...extra,
      programs,
    };
    const path = join(dir, "vigil.yaml");
    writeFileSync(path, JSON.stringify(config, null, 2)); // JSON is YAML
    // BENCH_VIGILD_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof": profile vigild under the bench's load.
    const nodeArgs = (process.env.BENCH_VIGILD_NODE_ARGS ?? "").split(" ").filter(Boolean);
    super(process.execPath, [...nodeArgs, VIGILD, "--config", path], { cwd: REPO, env: { PATH } });
    this.name = "vigild";
    this.dir = dir;
    this.config = path;
    this.workers = new Map(); // pid -> { ready, exited }
    this.readyCount = 0;
    this.generation = 0;
  }

  static async workers(spec) {
    const programs = {};
    for (const p of spec.programs) {
      if (p.command) {
        programs[p.name] = { command: p.command, instances: p.count };
        continue;
      }
      const s = spec.stop;
      programs[p.name] = {
        command: ["python3", PY_BENCH, ...(p.args ?? [])],
        instances: p.count,
        protocol: "on",
        heartbeat_timeout: ms(spec.heartbeatMs ?? 4000),
        ready_timeout: "3m",
        ...(s && {
          shutdown: {
            handlers_timeout: ms(s.handlersMs),
            teardown: "destroy",
            ...(s.teardownHangAfterMs && { teardown_hang_after: ms(s.teardownHangAfterMs) }),
            timeout: ms(s.timeoutMs),
          },
        }),
        ...(spec.restart && {
          restart: {
            limit: "10000 in 60s",
            ...(spec.restart.backoff !== undefined && { policy: "always", backoff_initial: spec.restart.backoff, backoff_max: "1ms" }),
          },
        }),
      };
    }
    return new Vigild(programs);
  }

  /** The servers on one vigil socket: Node with the protocol (ready once listening), or gunicorn without. */
  static async web(port, app) {
    const program =
      app === "node"
        ? { command: [process.execPath, NODE_FIXTURE], instances: 4, protocol: "on", sockets: ["http"] }
        : { command: gunicorn(), instances: 4, sockets: ["http"], shutdown: GUNICORN_SHUTDOWN };
    const v = new Vigild({ web: program }, { sockets: { http: { listen: `${HOST}:${port}`, backlog: 512 } } });
    await v.allReady(60_000);
    return v;
  }

  static async flood() {
    const f = new VigilFlood();
    await f.started();
    return f;
  }

  onEntry(e) {
    if (typeof e.pid !== "number" || typeof e.msg !== "string" || e.program === undefined) return;
    if (e.msg.endsWith(" spawned")) {
      this.workers.set(e.pid, { ready: false, exited: false });
      trackPid(e.pid);
    } else if (e.msg.includes(" ready after ")) {
      const w = this.workers.get(e.pid);
      if (w && !w.ready) {
        w.ready = true;
        this.readyCount++;
      }
    } else if ("outcome" in e && "uptime_ms" in e) {
      const w = this.workers.get(e.pid);
      if (w && !w.exited) {
        w.exited = true;
        if (w.ready) this.readyCount--;
      }
    }
  }

  workerPids() {
    return [...this.workers].filter(([, w]) => w.ready && !w.exited).map(([pid]) => pid);
  }

  allReady(timeoutMs) {
    return this.waitFor((e) => /^all \d+ workers ready/.test(e.msg ?? ""), timeoutMs, "all workers ready");
  }

  async ready(timeoutMs) {
    return (await this.allReady(timeoutMs)).at - this.startedAt;
  }

  readyAgain(pid, timeoutMs) {
    return this.waitUntil(() => (this.workers.get(pid)?.ready ? true : undefined), timeoutMs, `${pid} ready`);
  }

  hung(pid) {
    return (e) => e.pid === pid && e.phase === "running" && (e.msg ?? "").includes("hung in phase running");
  }

  spawned(pid) {
    return (e) => e.pid === pid && (e.msg ?? "").endsWith(" spawned");
  }

  metricsUrl() {
    return this.waitFor((e) => (e.msg ?? "").startsWith("metrics on") && typeof e.address === "string", 10_000, "metrics address").then((e) => e.address);
  }

  summaryLine() {
    return this.lines.find((e) => (e.msg ?? "").startsWith("stopped ") && "duration_ms" in e);
  }

  errorsLike(re) {
    return this.lines.filter((e) => re.test(e.msg ?? "") || re.test(JSON.stringify(e))).concat(re.test(this.stderr) ? [{ msg: this.stderr.slice(0, 500) }] : []);
  }

  /** A reload with a changed env (SIGHUP): the same rolling replacement as `vigilctl restart`, which needs D-Bus. */
  async restartWorkers() {
    const config = JSON.parse(readFileSync(this.config, "utf8"));
    config.programs.web.env = { ...config.programs.web.env, BENCH_GENERATION: String(++this.generation) };
    writeFileSync(this.config, JSON.stringify(config, null, 2));
    const from = this.lines.length;
    this.child.kill("SIGHUP");
    const done = await this.waitFor((e) => (e.msg ?? "").startsWith("reload done"), 120_000, "reload done", from);
    if (!/changed web/.test(done.msg)) throw new Error(`vigild: ${done.msg}`);
  }

  async end() {
    if (this.exitAt === null) await this.stop(30_000).catch(() => undefined);
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** vigild --check-config on a programs mapping: null when valid, else the error text. */
export function checkVigilConfig(programs) {
  const dir = scratch("check");
  const path = join(dir, "vigil.yaml");
  writeFileSync(path, JSON.stringify({ metrics: { listen: "off" }, dbus: { bus: "none" }, state_dir: join(dir, "s"), programs }));
  const r = spawnSync(process.execPath, [VIGILD, "--check-config", "--config", path], { encoding: "utf8", env: { PATH } });
  rmSync(dir, { recursive: true, force: true });
  return r.status === 0 ? null : (r.stderr || r.stdout).trim();
}

/** vigild logging a flooding worker's lines (one JSON entry each) to its stdout, a pipe to a plain line counter. */
class VigilFlood {
  constructor() {
    this.dir = scratch("output-vigil");
    this.wfile = join(this.dir, "written");
    this.rfile = join(this.dir, "reached");
    this.config = join(this.dir, "vigil.yaml");
    this.pid = null;
  }

  async started() {
    this.mport = await freePort();
    writeFileSync(
      this.config,
      JSON.stringify({
        metrics: { listen: `${HOST}:${this.mport}` },
        log: { level: "info", format: "json" },
        dbus: { bus: "none" },
        state_dir: join(this.dir, "state"),
        programs: { flood: { command: ["python3", PY_FLOOD], protocol: "off", env: { FLOOD_COUNT_FILE: this.wfile } } },
      }),
    );
    this.sh = new LineProcess("sh", ["-c", `"${process.execPath}" "${VIGILD}" --config "${this.config}" | python3 ${COUNT_LINES} ${this.rfile}`], { env: { PATH } });
    this.sh.name = "vigild | count_lines";
    const kids = await poll(() => (children(this.sh.pid).length === 2 ? children(this.sh.pid) : null), 10_000, "vigild and its reader");
    for (const k of kids) trackPid(k);
    this.pid = kids.find((k) => readFileSync(`/proc/${k}/cmdline`, "utf8").includes("main.js"));
    this.readerPid = kids.find((k) => k !== this.pid);
  }

  written() {
    return counter(this.wfile);
  }

  reached() {
    return counter(this.rfile);
  }

  /** The lines vigild dropped past its 1 MiB budget, from its metrics. */
  async extra() {
    for (const k of children(this.pid)) trackPid(k);
    const metrics = await (await fetch(`http://${HOST}:${this.mport}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const dropped = [...metrics.matchAll(/^vigil_worker_output_dropped_bytes_total\{[^}]*\} (\S+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    return { droppedLines: dropped / LINE_BYTES };
  }

  async end() {
    if (this.pid) {
      try {
        process.kill(this.pid, "SIGTERM");
      } catch {}
    }
    if (this.sh) {
      await within(this.sh.exited, 15_000);
      await this.sh.kill();
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
