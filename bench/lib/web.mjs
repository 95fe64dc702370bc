// The web scenarios' tools: Debian's wrk as the load, a window of load around
// an action, the web servers' programs and a free loopback port. wrk is
// registered for killEverything().
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { BENCH, HOST, PATH, REPO } from "./proc.mjs";
import { now, sleep, trackPid, within } from "./util.mjs";

export const NODE_FIXTURE = join(REPO, "test/fixtures/web/node_http.mjs");
export const NODE_PORT_APP = join(BENCH, "workers/node_http_port.cjs");
export const REUSEPORT = join(BENCH, "workers/reuseport.py");

export function freePort() {
  return new Promise((resolvePromise, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, HOST, () => {
      const { port } = s.address();
      s.close(() => resolvePromise(port));
    });
  });
}

/** One GET on a new connection; the answering pid, or null on any failure. */
export async function get(url, timeoutMs = 2000) {
  try {
    const res = await fetch(url, { headers: { connection: "close" }, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    return res.status === 200 ? Number(/pid=(\d+)/.exec(text)?.[1] ?? 0) : null;
  } catch {
    return null;
  }
}

/** Resolves once `n` different pids have answered on url (every instance accepts). */
export async function answering(url, n, timeoutMs = 30_000) {
  const pids = new Set();
  const until = now() + timeoutMs;
  while (pids.size < n) {
    if (now() > until) throw new Error(`${url}: only ${pids.size} of ${n} servers answered in ${timeoutMs} ms`);
    const pid = await get(url);
    if (pid) pids.add(pid);
    else await sleep(50);
  }
  return pids;
}

/** Resolves with the time (monotonic ms) the first request on url succeeds. */
export async function firstAnswer(url, timeoutMs = 60_000) {
  const until = now() + timeoutMs;
  while (now() < until) {
    if (await get(url, 1000)) return now();
    await sleep(20);
  }
  throw new Error(`${url}: no answer in ${timeoutMs} ms`);
}

export function parseWrk(output) {
  const requests = Number(/(\d+) requests in ([\d.]+)(\w+)/.exec(output)?.[1] ?? NaN);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = errors ? errors.slice(1).reduce((n, v) => n + Number(v), 0) : 0;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
  const lat = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m").exec(output);
    return m ? Number(m[1]) * scale[m[2]] : NaN;
  };
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1] ?? NaN);
  return {
    requests,
    socketErrors,
    errors: errors ? { connect: +errors[1], read: +errors[2], write: +errors[3], timeout: +errors[4] } : null,
    non2xx,
    lost: socketErrors + non2xx,
    p50Ms: lat(50),
    p99Ms: lat(99),
    rps,
  };
}

/**
 * wrk with a new connection per request (`Connection: close`: a request that
 * meets no accepting server is a socket error, not a hidden reconnect), run
 * until stop(): wrk ends on SIGINT and prints its figures for the time it ran.
 */
export class Wrk {
  constructor(url, { connections = 4, threads = 2, maxSeconds = 300 } = {}) {
    this.startedAt = now();
    this.child = spawn("wrk", [`-t${threads}`, `-c${connections}`, `-d${maxSeconds}s`, "--timeout", "5s", "--latency", "-H", "Connection: close", url], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH },
    });
    trackPid(this.child.pid);
    let out = "";
    this.child.stdout.setEncoding("utf8").on("data", (d) => (out += d));
    this.child.stderr.setEncoding("utf8").on("data", (d) => (out += d));
    this.result = new Promise((resolvePromise, reject) => {
      this.child.once("error", (err) => reject(new Error(`wrk: ${err.message} (Debian package wrk)`)));
      this.child.once("exit", (code, signal) => {
        if (code !== 0) reject(new Error(`wrk exited ${code ?? signal}: ${out}`));
        else resolvePromise({ ...parseWrk(out), seconds: (now() - this.startedAt) / 1000, output: out });
      });
    });
    this.result.catch(() => undefined);
  }

  async stop() {
    this.child.kill("SIGINT");
    const r = await within(this.result, 15_000, null);
    if (r === null) {
      this.child.kill("SIGKILL");
      throw new Error("wrk did not end within 15 s of SIGINT");
    }
    return r;
  }
}

/** Load for `seconds` with nothing happening: the steady figures of a system. */
export async function steadyWindow(url, seconds, options) {
  const w = new Wrk(url, options);
  await sleep(seconds * 1000);
  return w.stop();
}

/**
 * Load around an action: `leadMs` of load, then `await action()`, then
 * `tailMs` more. Resolves with wrk's figures for the whole window and the
 * action's own result and duration.
 */
export async function actionWindow(url, action, { leadMs = 1500, tailMs = 1000, ...options } = {}) {
  const w = new Wrk(url, options);
  let actionResult;
  let actionMs;
  try {
    await sleep(leadMs);
    const t0 = now();
    actionResult = await action();
    actionMs = now() - t0;
    await sleep(tailMs);
  } catch (err) {
    await w.stop().catch(() => undefined);
    throw err;
  }
  const r = await w.stop();
  return { ...r, actionMs, actionResult };
}
