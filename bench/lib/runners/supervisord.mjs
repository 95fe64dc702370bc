// supervisord (see ../runners.mjs for the interface): Debian's package, run in
// the foreground (`supervisord -c TMP.conf -n`) with its own configuration in
// a scratch folder, never as a service.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HOST, LineProcess, PATH, PY_BENCH, PY_FLOOD, REPO, counter, fileLines, readyFiles, scratch } from "../proc.mjs";
import { children, poll, trackPid } from "../util.mjs";
import { NODE_FIXTURE, REUSEPORT } from "../web.mjs";
import { gunicorn } from "./gunicorn.mjs";

export class Supervisord {
  /**
   * programs: [{ name, command, count, stopwaitsecs, options }], or a function of
   * the scratch folder that returns them; `options` overrides or adds program options.
   */
  constructor(programs) {
    this.dir = scratch("supervisord");
    if (typeof programs === "function") programs = programs(this.dir);
    this.readyDir = join(this.dir, "ready");
    mkdirSync(this.readyDir);
    const conf = [
      "[unix_http_server]",
      `file=${join(this.dir, "supervisor.sock")}`,
      "[supervisord]",
      `logfile=${join(this.dir, "supervisord.log")}`,
      `pidfile=${join(this.dir, "supervisord.pid")}`,
      `childlogdir=${this.dir}`,
      "nodaemon=true",
      "minfds=1024",
      "[rpcinterface:supervisor]",
      "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
      "[supervisorctl]",
      `serverurl=unix://${join(this.dir, "supervisor.sock")}`,
    ];
    for (const p of programs) {
      // supervisord refuses an option given twice: overrides replace, not append.
      const options = {
        command: p.command,
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
        environment: `BENCH_READY_DIR="${this.readyDir}"`,
        ...p.options,
      };
      conf.push(`[program:${p.name}]`, ...Object.entries(options).map(([k, v]) => `${k}=${v}`));
    }
    this.conf = join(this.dir, "supervisord.conf");
    writeFileSync(this.conf, conf.join("\n") + "\n");
    this.programs = programs;
    this.total = programs.reduce((n, p) => n + p.count, 0);
    this.spawn();
  }

  spawn() {
    this.proc = new LineProcess("supervisord", ["-c", this.conf, "-n"], { cwd: this.dir, env: { PATH } });
    this.proc.name = "supervisord";
  }

  get pid() {
    return this.proc.pid;
  }

  static version() {
    const r = spawnSync("supervisord", ["--version"], { encoding: "utf8" });
    return r.status === 0 ? r.stdout.trim() : null;
  }

  /** Why supervisord cannot run here, or null. */
  static unavailable() {
    return Supervisord.version() ? null : "supervisord not installed (bench/run.sh installs Debian's supervisor when run as root)";
  }

  static async workers(spec) {
    return new Supervisord(
      spec.programs.map((p) => {
        if (p.command) throw new Error("supervisord runs the Python workers only");
        return { name: p.name, command: ["python3", PY_BENCH, ...(p.args ?? [])].join(" "), count: p.count, stopwaitsecs: (spec.stop?.timeoutMs ?? 5000) / 1000 };
      }),
    );
  }

  /** "node": the floor's servers (own SO_REUSEPORT sockets) under supervisord; "gunicorn": 4 `gunicorn --reuse-port`. */
  static async web(port, app) {
    if (app === "node") {
      return new Supervisord([{ name: "web", count: 4, command: `python3 ${REUSEPORT} ${HOST} ${port} ${process.execPath} ${NODE_FIXTURE}`, stopwaitsecs: 5, options: { directory: REPO } }]);
    }
    // supervisorctl restart returns once the new master has run 1 s (RUNNING).
    const command = gunicorn({ bind: `${HOST}:${port}`, reusePort: true }).join(" ");
    return new Supervisord([{ name: "web", count: 4, command, stopwaitsecs: 10, options: { startsecs: 1, directory: REPO } }]);
  }

  /** The worker's output into supervisord's log file (stdout_logfile), counted by size. */
  static async flood() {
    const s = new Supervisord((dir) => [
      {
        name: "flood",
        count: 1,
        command: `python3 ${PY_FLOOD}`,
        stopwaitsecs: 5,
        options: { stdout_logfile: join(dir, "flood.log"), stdout_logfile_maxbytes: 0, environment: `FLOOD_COUNT_FILE="${join(dir, "written")}"` },
      },
    ]);
    return Object.assign(s, {
      written: () => counter(join(s.dir, "written")),
      reached: () => fileLines(join(s.dir, "flood.log")),
      readerPid: null,
      extra: async () => (s.workerPids().forEach((k) => trackPid(k)), {}),
    });
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

  async ready(timeoutMs) {
    const t = await readyFiles(this.readyDir, this.total, timeoutMs);
    for (const p of this.workerPids()) trackPid(p);
    return t - this.proc.startedAt;
  }

  workerPids() {
    return children(this.pid);
  }

  readyAgain(pid, timeoutMs) {
    return poll(() => existsSync(join(this.readyDir, String(pid))), timeoutMs, `supervisord's worker ${pid} ready`);
  }

  stop(timeoutMs) {
    return this.proc.stop(timeoutMs);
  }

  /** `supervisorctl restart` of each process, one after another. */
  async restartWorkers() {
    for (let i = 0; i < this.total; i++) await this.ctl(["restart", `web:web_${String(i).padStart(4, "0")}`]);
  }

  /** Stopped and started again with the same configuration: what `systemctl restart supervisor` does. */
  async restartSupervisor() {
    await this.proc.stop(60_000);
    this.spawn();
  }

  async end() {
    if (this.proc.exitAt === null) await this.proc.stop(30_000).catch(() => undefined);
    await this.proc.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
