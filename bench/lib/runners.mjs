// The four ways the bench runs the same workers: vigild, the floor script,
// PM2 and supervisord; plus pidwatch.py, which tells when processes that are
// not ours exit. Every process started here is registered for killEverything().
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { children, isAlive, now, trackPid, trackTree, within } from "./util.mjs";

export const BENCH = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO = resolve(BENCH, "..");
// bench/run.sh points this at a copy of dist/ taken when the run starts, so a
// rebuild during a long run cannot mix two builds in one table.
export const VIGILD = process.env.BENCH_VIGILD || join(REPO, "dist/daemon/main.js");
export const PY_BENCH = join(BENCH, "workers/py_bench.py");
export const PEERS = join(BENCH, ".peers");
export const PM2_BIN = join(PEERS, "node_modules/pm2/bin/pm2");
export const PATH = process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin";

export function scratch(prefix) {
  return mkdtempSync(join(tmpdir(), `vigil-bench-${prefix}-`));
}

/** A child whose stdout is JSON lines; each parsed line gets `at`, its arrival time (monotonic ms). */
export class LineProcess {
  constructor(command, args, options) {
    this.lines = [];
    this.stderr = "";
    this.waiters = [];
    this.exitAt = null;
    this.exitCode = undefined;
    this.startedAt = now();
    this.child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
    this.pid = this.child.pid;
    trackTree(this.pid);
    let pending = "";
    this.child.stdout.setEncoding("utf8").on("data", (chunk) => {
      const at = now();
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf("\n")) !== -1) {
        const raw = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        let entry;
        try {
          entry = JSON.parse(raw);
        } catch {
          entry = { msg: raw, unparsed: true };
        }
        entry.at = at;
        this.onEntry(entry);
        this.lines.push(entry);
      }
      this.wake();
    });
    this.child.stderr.setEncoding("utf8").on("data", (c) => {
      if (this.stderr.length < 100_000) this.stderr += c;
    });
    this.exited = new Promise((done) =>
      this.child.once("exit", (code, signal) => {
        this.exitAt = now();
        this.exitCode = code ?? signal;
        this.wake();
        done();
      }),
    );
  }

  onEntry() {}

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The first entry at index >= from that matches; rejects after timeoutMs or when the process exits. */
  waitFor(match, timeoutMs, what, from = 0) {
    return new Promise((resolvePromise, reject) => {
      let i = from;
      const timer = setTimeout(() => reject(new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}\n${this.tail()}`)), timeoutMs);
      const check = () => {
        for (; i < this.lines.length; i++) {
          if (match(this.lines[i])) {
            clearTimeout(timer);
            return resolvePromise(this.lines[i]);
          }
        }
        if (this.exitAt !== null) {
          clearTimeout(timer);
          return reject(new Error(`${this.name}: exited (${this.exitCode}) before ${what}\n${this.tail()}`));
        }
        this.waiters.push(check);
      };
      check();
    });
  }

  /** Resolves when probe() returns something other than undefined (checked on every new line). */
  waitUntil(probe, timeoutMs, what) {
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}\n${this.tail()}`)), timeoutMs);
      const check = () => {
        const v = probe();
        if (v !== undefined) {
          clearTimeout(timer);
          return resolvePromise(v);
        }
        if (this.exitAt !== null) {
          clearTimeout(timer);
          return reject(new Error(`${this.name}: exited (${this.exitCode}) before ${what}\n${this.tail()}`));
        }
        this.waiters.push(check);
      };
      check();
    });
  }

  tail(n = 12) {
    return [...this.lines.slice(-n).map((e) => (e.unparsed ? e.msg : JSON.stringify(e)).slice(0, 300)), this.stderr.slice(-2000)].join("\n");
  }

  /** SIGTERM now; resolves with the time from the signal to the process's exit (ms). */
  async stop(timeoutMs) {
    const t0 = now();
    this.child.kill("SIGTERM");
    await within(this.exited, timeoutMs);
    if (this.exitAt === null) throw new Error(`${this.name}: did not exit within ${timeoutMs} ms of SIGTERM\n${this.tail()}`);
    return this.exitAt - t0;
  }

  async kill() {
    if (this.exitAt === null) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
  }
}

// ---------------------------------------------------------------- vigild

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
    this.workers = new Map(); // pid -> { ready, exited }
    this.readyCount = 0;
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

  livePids() {
    return [...this.workers].filter(([, w]) => !w.exited).map(([pid]) => pid);
  }
  readyPids() {
    return [...this.workers].filter(([, w]) => w.ready && !w.exited).map(([pid]) => pid);
  }

  allReady(timeoutMs) {
    return this.waitFor((e) => /^all \d+ workers ready/.test(e.msg ?? ""), timeoutMs, "all workers ready");
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

  async cleanup() {
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

// ---------------------------------------------------------------- floor

export class Floor extends LineProcess {
  constructor(spec) {
    const dir = scratch("floor");
    const path = join(dir, "spec.json");
    writeFileSync(path, JSON.stringify(spec));
    super(process.execPath, [join(BENCH, "floor.mjs"), path], { cwd: REPO, env: { PATH } });
    this.name = "floor";
    this.dir = dir;
    this.pids = new Set();
    this.ready = new Set();
  }

  onEntry(e) {
    if (e.ev === "pids") for (const p of e.pids) (this.pids.add(p), trackPid(p));
    if (e.ev === "ready") for (const p of this.pids) this.ready.add(p);
    if (e.ev === "ready_one") this.ready.add(e.pid);
    if (e.ev === "spawned") (this.pids.add(e.pid), trackPid(e.pid));
    if (e.ev === "exited") (this.pids.delete(e.pid), this.ready.delete(e.pid));
  }

  get readyCount() {
    return this.ready.size;
  }
  readyPids() {
    return [...this.ready];
  }

  allReady(timeoutMs) {
    return this.waitFor((e) => e.ev === "ready", timeoutMs, "all workers ready");
  }

  async cleanup() {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- pidwatch

export class PidWatch {
  constructor() {
    this.child = spawn("python3", [join(BENCH, "lib/pidwatch.py")], { stdio: ["pipe", "pipe", "inherit"] });
    trackPid(this.child.pid);
    this.next = 1;
    this.handlers = new Map();
    let pending = "";
    this.child.stdout.setEncoding("utf8").on("data", (chunk) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf("\n")) !== -1) {
        const msg = JSON.parse(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        this.handlers.get(msg.id)?.(msg);
      }
    });
  }

  /** Arms a watch; resolves (once armed) with a promise of the final answer. */
  request(cmd) {
    const id = this.next++;
    return new Promise((armed) => {
      let done;
      const result = new Promise((r) => (done = r));
      this.handlers.set(id, (msg) => {
        if (msg.armed) armed({ result });
        else {
          this.handlers.delete(id);
          done(msg);
        }
      });
      this.child.stdin.write(JSON.stringify({ ...cmd, id }) + "\n");
    });
  }

  allDead(pids) {
    return this.request({ cmd: "all_dead", pids });
  }

  replaced(pid, parent, timeoutMs = 5000) {
    return this.request({ cmd: "replaced", pid, parent, timeout_ms: timeoutMs });
  }

  close() {
    this.child.stdin.end();
    this.child.kill("SIGKILL");
  }
}

// ---------------------------------------------------------------- ready files (peers)

/** Resolves when `count` files exist in dir (the workers' "ready" under PM2 / supervisord). */
export function readyFiles(dir, count, timeoutMs) {
  return new Promise((resolvePromise, reject) => {
    let done = false;
    const check = () => {
      if (done) return;
      const n = readdirSync(dir).length;
      if (n >= count) {
        done = true;
        watcher.close();
        clearInterval(poll);
        clearTimeout(timer);
        resolvePromise(now());
      }
    };
    const watcher = watch(dir, check);
    const poll = setInterval(check, 50);
    const timer = setTimeout(() => {
      done = true;
      watcher.close();
      clearInterval(poll);
      reject(new Error(`only ${readdirSync(dir).length} of ${count} workers ready in ${dir} after ${timeoutMs} ms`));
    }, timeoutMs);
    check();
  });
}

// ---------------------------------------------------------------- PM2

export function pm2Available() {
  try {
    readFileSync(PM2_BIN);
    return null;
  } catch {
    return `PM2 not installed in ${PEERS} (bench/run.sh installs it with npm; see its output)`;
  }
}

export class Pm2 {
  /** apps: [{ name, args: [...], count, kill_timeout_ms }] */
  constructor(apps) {
    this.dir = scratch("pm2");
    this.home = join(this.dir, "home");
    this.readyDir = join(this.dir, "ready");
    mkdirSync(this.home);
    mkdirSync(this.readyDir);
    this.total = apps.reduce((n, a) => n + (a.count ?? 0), 0);
    const list = [];
    for (const a of apps) {
      // An app given whole (a web server, a log flood) is passed to PM2 as it is.
      if (a.app) {
        list.push(a.app);
        continue;
      }
      for (let i = 0; i < a.count; i++) {
        list.push({
          name: `${a.name}-${i}`,
          script: PY_BENCH,
          interpreter: "python3",
          args: a.args,
          exec_mode: "fork",
          autorestart: true,
          restart_delay: 0,
          max_restarts: 100000,
          min_uptime: 0,
          kill_timeout: a.kill_timeout_ms,
          treekill: true,
          vizion: false,
          automation: false,
          pmx: false,
          out_file: "/dev/null",
          error_file: "/dev/null",
          env: { BENCH_READY_DIR: this.readyDir },
        });
      }
    }
    this.ecosystem = join(this.dir, "ecosystem.json");
    writeFileSync(this.ecosystem, JSON.stringify({ apps: list }));
    this.godPid = null;
  }

  env() {
    return { PATH, HOME: this.dir, PM2_HOME: this.home };
  }

  cli(args, timeoutMs = 120_000) {
    return new Promise((resolvePromise, reject) => {
      const t0 = now();
      const child = spawn(process.execPath, [PM2_BIN, ...args], { env: this.env(), stdio: ["ignore", "pipe", "pipe"] });
      trackPid(child.pid);
      let out = "";
      child.stdout.on("data", (c) => (out += c));
      child.stderr.on("data", (c) => (out += c));
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`pm2 ${args.join(" ")} took over ${timeoutMs} ms\n${out.slice(-2000)}`));
      }, timeoutMs);
      child.on("exit", (code) => {
        clearTimeout(timer);
        const t1 = now();
        if (code !== 0) reject(new Error(`pm2 ${args.join(" ")} exited ${code}\n${out.slice(-2000)}`));
        else resolvePromise({ t0, t1, out });
      });
    });
  }

  /** Starts the God daemon and every worker; resolves with the time until all are ready (ms). */
  async start(timeoutMs) {
    const t0 = now();
    const ready = readyFiles(this.readyDir, this.total, timeoutMs);
    await this.cli(["start", this.ecosystem]);
    this.godPid = Number(readFileSync(join(this.home, "pm2.pid"), "utf8").trim());
    trackTree(this.godPid);
    const t1 = await ready;
    for (const p of this.workerPids()) trackPid(p);
    return t1 - t0;
  }

  workerPids() {
    return children(this.godPid);
  }

  /** `pm2 kill` (the stop of PM2's systemd unit): ms until the command returned and every worker and the daemon are gone. */
  async stop(watcher, timeoutMs) {
    const pids = [...this.workerPids(), this.godPid];
    const { result } = await watcher.allDead(pids);
    const t0 = now();
    const { t1 } = await this.cli(["kill"], timeoutMs);
    const dead = await within(result, timeoutMs, null);
    if (dead === null) throw new Error("pm2 kill: workers still alive");
    return Math.max(t1, Number(BigInt(dead.all_dead_ns) / 1000n) / 1000) - t0;
  }

  async cleanup() {
    if (this.godPid && isAlive(this.godPid)) {
      try {
        await this.cli(["kill"], 60_000);
      } catch {}
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- supervisord

export function supervisordAvailable() {
  const r = spawnSync("supervisord", ["--version"], { encoding: "utf8" });
  return r.status === 0 ? null : "supervisord not installed (bench/run.sh installs Debian's supervisor when run as root)";
}

export class Supervisord extends LineProcess {
  /**
   * programs: [{ name, args: [...], count, stopwaitsecs }]; `command` replaces
   * the Python worker, `options` overrides or adds program options.
   */
  constructor(programs) {
    const dir = scratch("supervisord");
    const readyDir = join(dir, "ready");
    mkdirSync(readyDir);
    const conf = [
      "[unix_http_server]",
      `file=${join(dir, "supervisor.sock")}`,
      "[supervisord]",
      `logfile=${join(dir, "supervisord.log")}`,
      `pidfile=${join(dir, "supervisord.pid")}`,
      `childlogdir=${dir}`,
      "nodaemon=true",
      "minfds=1024",
      "[rpcinterface:supervisor]",
      "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
      "[supervisorctl]",
      `serverurl=unix://${join(dir, "supervisor.sock")}`,
    ];
    for (const p of programs) {
      // supervisord refuses an option given twice: overrides replace, not append.
      const options = {
        command: p.command ?? `python3 ${PY_BENCH} ${p.args.join(" ")}`,
        numprocs: p.count,
        process_name: "%(program_name)s_%(process_num)04d",
        autostart: "true",
        autorestart: "true",
        startsecs: 0,
        startretries: 100000,
        stopsignal: "TERM",
        stopwaitsecs: p.stopwaitsecs,
        stopasgroup: "true",
        killasgroup: "true",
        stdout_logfile: "NONE",
        stderr_logfile: "NONE",
        environment: `BENCH_READY_DIR="${readyDir}"`,
        ...p.options,
      };
      conf.push(`[program:${p.name}]`, ...Object.entries(options).map(([k, v]) => `${k}=${v}`));
    }
    const path = join(dir, "supervisord.conf");
    writeFileSync(path, conf.join("\n") + "\n");
    super("supervisord", ["-c", path, "-n"], { cwd: dir, env: { PATH } });
    this.name = "supervisord";
    this.dir = dir;
    this.readyDir = readyDir;
    this.conf = path;
    this.total = programs.reduce((n, p) => n + p.count, 0);
  }

  /** supervisorctl against this supervisord; rejects unless it exits 0. */
  ctl(args, timeoutMs = 60_000) {
    return new Promise((resolvePromise, reject) => {
      const child = spawn("supervisorctl", ["-c", this.conf, ...args], { env: { PATH }, stdio: ["ignore", "pipe", "pipe"] });
      trackPid(child.pid);
      let out = "";
      child.stdout.on("data", (c) => (out += c));
      child.stderr.on("data", (c) => (out += c));
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.on("exit", (code) => {
        clearTimeout(timer);
        if (code === 0) resolvePromise(out);
        else reject(new Error(`supervisorctl ${args.join(" ")} exited ${code}: ${out.slice(-1000)}`));
      });
    });
  }

  ready(timeoutMs) {
    return readyFiles(this.readyDir, this.total, timeoutMs).then((t) => {
      for (const p of this.workerPids()) trackPid(p);
      return t;
    });
  }

  workerPids() {
    return children(this.pid);
  }

  async cleanup() {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
