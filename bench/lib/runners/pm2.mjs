// PM2 (see ../runners.mjs for the interface): installed by bench/run.sh into
// bench/.peers, run with PM2_HOME in a scratch folder, ended with `pm2 kill`.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BENCH, PATH, PY_BENCH, PY_FLOOD, counter, fileLines, pidWatch, readyFiles, scratch } from "../proc.mjs";
import { children, isAlive, now, poll, trackPid, trackTree, within } from "../util.mjs";
import { NODE_PORT_APP } from "../web.mjs";

const PEERS = join(BENCH, ".peers");
export const PM2_BIN = join(PEERS, "node_modules/pm2/bin/pm2");
// What every app gets: no git probing, no telemetry, no logs unless asked.
const QUIET = { vizion: false, automation: false, pmx: false, out_file: "/dev/null", error_file: "/dev/null" };

export class Pm2 {
  /** apps: PM2 app objects (or a function of the scratch folder that returns them); `readyCount` of them create a file in `readyDir` once ready. */
  constructor(apps, readyCount = 0) {
    this.dir = scratch("pm2");
    if (typeof apps === "function") apps = apps(this.dir);
    this.home = join(this.dir, "home");
    this.readyDir = join(this.dir, "ready");
    mkdirSync(this.home);
    mkdirSync(this.readyDir);
    this.total = readyCount;
    this.apps = apps.map((a) => ({ ...QUIET, ...a, env: { BENCH_READY_DIR: this.readyDir, ...a.env } }));
    this.ecosystem = join(this.dir, "ecosystem.json");
    writeFileSync(this.ecosystem, JSON.stringify({ apps: this.apps }));
    this.pid = null; // the God daemon
  }

  /** Why PM2 cannot run here, or null. */
  static unavailable() {
    return existsSync(PM2_BIN) ? null : `PM2 not installed in ${PEERS} (bench/run.sh installs it with npm; see its output)`;
  }

  static version() {
    try {
      return JSON.parse(readFileSync(join(PM2_BIN, "../../package.json"), "utf8")).version;
    } catch {
      return null;
    }
  }

  /** One fork-mode app per worker, restarted at once and without limit. */
  static async workers(spec) {
    const apps = [];
    for (const p of spec.programs) {
      if (p.command) throw new Error("PM2 runs the Python workers only");
      for (let i = 0; i < p.count; i++) {
        apps.push({
          name: `${p.name}-${i}`,
          script: PY_BENCH,
          interpreter: "python3",
          args: p.args ?? [],
          exec_mode: "fork",
          autorestart: true,
          restart_delay: 0,
          max_restarts: 100000,
          min_uptime: 0,
          kill_timeout: spec.stop?.timeoutMs ?? 5000,
          treekill: true,
        });
      }
    }
    return new Pm2(apps, apps.length);
  }

  /** Cluster mode: 4 instances of the Node server on $PORT; PM2's primary accepts and hands each connection over. */
  static async web(port) {
    const p = new Pm2([{ name: "web", script: NODE_PORT_APP, exec_mode: "cluster", instances: 4, autorestart: true, kill_timeout: 5000, env: { PORT: String(port) } }]);
    await p.ready(120_000);
    return p;
  }

  /** Fork mode, the worker's output into PM2's log file (out_file), counted by size. */
  static async flood() {
    const p = new Pm2((dir) => [
      { name: "flood", script: PY_FLOOD, interpreter: "python3", exec_mode: "fork", autorestart: false, out_file: join(dir, "out.log"), env: { FLOOD_COUNT_FILE: join(dir, "written") } },
    ]);
    await p.ready(120_000);
    return Object.assign(p, { written: () => counter(join(p.dir, "written")), reached: () => fileLines(join(p.dir, "out.log")), readerPid: null, extra: async () => ({}) });
  }

  env() {
    return { PATH, HOME: this.dir, PM2_HOME: this.home };
  }

  cli(args, timeoutMs = 120_000) {
    return new Promise((resolvePromise, reject) => {
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
        if (code !== 0) reject(new Error(`pm2 ${args.join(" ")} exited ${code}\n${out.slice(-2000)}`));
        else resolvePromise(now());
      });
    });
  }

  /** Starts the God daemon and every app; resolves with the ms until all workers are ready. */
  async ready(timeoutMs) {
    const t0 = now();
    const ready = readyFiles(this.readyDir, this.total, timeoutMs);
    await this.cli(["start", this.ecosystem]);
    this.trackGod();
    const t1 = await ready;
    for (const p of this.workerPids()) trackPid(p);
    return t1 - t0;
  }

  trackGod() {
    this.pid = Number(readFileSync(join(this.home, "pm2.pid"), "utf8").trim());
    trackTree(this.pid);
    for (const p of this.workerPids()) trackPid(p);
  }

  workerPids() {
    return children(this.pid);
  }

  readyAgain(pid, timeoutMs) {
    return poll(() => existsSync(join(this.readyDir, String(pid))), timeoutMs, `PM2's worker ${pid} ready`);
  }

  /** `pm2 kill` (the stop of PM2's systemd unit): ms until the command returned and every worker and the daemon are gone. */
  async stop(timeoutMs) {
    const { result } = await pidWatch().allDead([...this.workerPids(), this.pid]);
    const t0 = now();
    const t1 = await this.cli(["kill"], timeoutMs);
    const dead = await within(result, timeoutMs, null);
    if (dead === null) throw new Error("pm2 kill: workers still alive");
    return Math.max(t1, Number(BigInt(dead.all_dead_ns) / 1000n) / 1000) - t0;
  }

  /** `pm2 reload NAME`: PM2's graceful rolling reload. */
  async restartWorkers() {
    await this.cli(["reload", this.apps[0].name], 120_000);
    for (const p of this.workerPids()) trackPid(p);
  }

  /** The whole of PM2 restarted as its systemd unit would be: `pm2 save`, `pm2 kill`, `pm2 resurrect`. */
  async restartSupervisor() {
    await this.cli(["save"]);
    await this.cli(["kill"], 120_000);
    await this.cli(["resurrect"], 120_000);
    this.trackGod();
  }

  async end() {
    if (this.pid && isAlive(this.pid)) {
      try {
        await this.cli(["kill"], 60_000);
      } catch {}
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
