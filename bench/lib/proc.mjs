// The plumbing every runner shares: paths, scratch folders, a child that
// speaks JSON lines, pidwatch.py (exit times of processes that are not the
// bench's children) and the ready files of the peers. Every process started
// here is registered for killEverything().
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, watch } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { now, trackPid, trackTree, within } from "./util.mjs";

export const BENCH = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO = resolve(BENCH, "..");
// bench/run.sh points this at a copy of dist/ taken when the run starts, so a
// rebuild during a long run cannot mix two builds in one table.
export const VIGILD = process.env.BENCH_VIGILD || join(REPO, "dist/daemon/main.js");
export const PY_BENCH = join(BENCH, "workers/py_bench.py");
export const PY_FLOOD = join(BENCH, "workers/py_flood.py");
export const COUNT_LINES = join(BENCH, "lib/count_lines.py");
export const PATH = process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin";
export const HOST = "127.0.0.1";
/** py_flood.py's line, newline included. */
export const LINE_BYTES = 100;

export function scratch(prefix) {
  return mkdtempSync(join(tmpdir(), `vigil-bench-${prefix}-`));
}

/** The number in a counter file written by py_flood.py or count_lines.py (0 until it exists). */
export function counter(path) {
  try {
    return Number(readFileSync(path, "utf8").trim()) || 0;
  } catch {
    return 0;
  }
}

/** Lines of py_flood.py in a log file that holds nothing else. */
export function fileLines(path) {
  try {
    return statSync(path).size / LINE_BYTES;
  } catch {
    return 0;
  }
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

// ---------------------------------------------------------------- pidwatch

let shared = null;

/** The one pidwatch.py of the running scenario (killEverything() ends it with the scenario; the next gets a new one). */
export function pidWatch() {
  if (!shared || shared.child.exitCode !== null || shared.child.signalCode !== null) shared = new PidWatch();
  return shared;
}

class PidWatch {
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

