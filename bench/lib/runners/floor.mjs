// The physical floor (see ../runners.mjs for the interface): bench/floor.mjs
// for workers; for web servers and the log flood, the same programs with no
// supervisor at all.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BENCH, COUNT_LINES, HOST, LineProcess, PATH, PY_BENCH, PY_FLOOD, REPO, counter, scratch } from "../proc.mjs";
import { children, poll, trackPid, within } from "../util.mjs";
import { NODE_FIXTURE, REUSEPORT } from "../web.mjs";

export class Floor extends LineProcess {
  /** spec: bench/floor.mjs's SPEC (groups, stop, restart, detect_hangs). */
  constructor(spec) {
    const dir = scratch("floor");
    const path = join(dir, "spec.json");
    writeFileSync(path, JSON.stringify(spec));
    super(process.execPath, [join(BENCH, "floor.mjs"), path], { cwd: REPO, env: { PATH } });
    this.name = "floor";
    this.dir = dir;
    this.pids = new Set();
    this.readySet = new Set();
  }

  static async workers(spec) {
    const s = spec.stop;
    return new Floor({
      groups: spec.programs.map((p) =>
        p.command
          ? { name: p.name, command: p.command, count: p.count, protocol: false }
          : { name: p.name, command: ["python3", PY_BENCH, ...(p.args ?? [])], count: p.count, protocol: true, heartbeat_timeout_ms: spec.heartbeatMs ?? 4000 },
      ),
      stop: s && { handlers_timeout_ms: s.handlersMs, timeout_ms: s.timeoutMs, teardown: "destroy" },
      restart: Boolean(spec.restart),
      detect_hangs: Boolean(spec.hangs),
    });
  }

  /** The 4 servers, each binding its own SO_REUSEPORT socket (workers/reuseport.py), no supervisor. */
  static async web(port, app) {
    if (app !== "node") throw new Error(`the floor serves the Node fixture only, not ${app}`);
    return new ReusePortServers(port, [process.execPath, NODE_FIXTURE], 4);
  }

  static async flood() {
    const f = new FloorFlood();
    await f.started();
    return f;
  }

  onEntry(e) {
    if (e.ev === "pids") for (const p of e.pids) (this.pids.add(p), trackPid(p));
    if (e.ev === "ready") for (const p of this.pids) this.readySet.add(p);
    if (e.ev === "ready_one") this.readySet.add(e.pid);
    if (e.ev === "spawned") (this.pids.add(e.pid), trackPid(e.pid));
    if (e.ev === "exited") (this.pids.delete(e.pid), this.readySet.delete(e.pid));
  }

  get readyCount() {
    return this.readySet.size;
  }

  workerPids() {
    return [...this.readySet];
  }

  allReady(timeoutMs) {
    return this.waitFor((e) => e.ev === "ready", timeoutMs, "all workers ready");
  }

  async ready(timeoutMs) {
    return (await this.allReady(timeoutMs)).at - this.startedAt;
  }

  readyAgain(pid, timeoutMs) {
    return this.waitUntil(() => (this.readySet.has(pid) ? true : undefined), timeoutMs, `${pid} ready`);
  }

  hung(pid) {
    return (e) => e.ev === "hung" && e.pid === pid;
  }

  spawned(pid) {
    return (e) => e.ev === "spawned" && e.pid === pid;
  }

  async end() {
    if (this.exitAt === null) await this.stop(30_000).catch(() => undefined);
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `count` copies of argv, each started through reuseport.py on HOST:port. */
class ReusePortServers {
  constructor(port, argv, count) {
    this.procs = [];
    for (let i = 0; i < count; i++) {
      const p = new LineProcess("python3", [REUSEPORT, HOST, String(port), ...argv], { cwd: REPO, env: { PATH } });
      p.name = `reuseport-${i}`;
      this.procs.push(p);
    }
  }

  async end() {
    for (const p of this.procs) p.child.kill("SIGTERM");
    await within(Promise.all(this.procs.map((p) => p.exited)), 10_000);
    for (const p of this.procs) await p.kill();
  }
}

/** The flooding worker's stdout straight into the plain line counter: what the worker can print. */
class FloorFlood {
  constructor() {
    this.dir = scratch("output-floor");
    this.wfile = join(this.dir, "written");
    this.rfile = join(this.dir, "reached");
    this.pid = null;
    this.sh = new LineProcess("sh", ["-c", `python3 ${PY_FLOOD} | python3 ${COUNT_LINES} ${this.rfile}`], { env: { PATH, FLOOD_COUNT_FILE: this.wfile } });
    this.sh.name = "floor";
  }

  async started() {
    const kids = await poll(() => (children(this.sh.pid).length === 2 ? children(this.sh.pid) : null), 10_000, "the worker and its reader");
    for (const k of kids) trackPid(k);
    this.readerPid = kids.find((k) => readFileSync(`/proc/${k}/cmdline`, "utf8").includes("count_lines"));
  }

  written() {
    return counter(this.wfile);
  }

  reached() {
    return counter(this.rfile);
  }

  async extra() {
    return {};
  }

  async end() {
    // The worker and its reader first: the next system must not share the machine with them.
    for (const k of children(this.sh.pid)) {
      try {
        process.kill(k, "SIGKILL");
      } catch {}
    }
    await this.sh.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
