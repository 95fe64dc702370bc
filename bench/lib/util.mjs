// Small helpers of the bench: time, statistics, /proc, and the registry of
// every process the bench started, so each scenario can kill all of them by
// pid (and process group) at its end, pass or fail.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** CLOCK_MONOTONIC in ms (the clock vigild, the floor and the workers' heartbeats use). */
export const now = () => Number(process.hrtime.bigint() / 1000n) / 1000;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The promise's value, or `fallback` after ms (the timer never outlives the race). */
export function within(promise, ms, fallback = undefined) {
  let timer;
  return Promise.race([promise, new Promise((r) => (timer = setTimeout(() => r(fallback), ms)))]).finally(() => clearTimeout(timer));
}

/** Polls probe() every 20 ms until it returns something truthy, which it resolves with. */
export async function poll(probe, timeoutMs, what) {
  const until = now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

// ---------------------------------------------------------------- statistics

export function median(xs) {
  return percentile(xs, 50);
}

/** Nearest-rank percentile (p99 of 5 samples is their maximum). */
export function percentile(xs, p) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * v.length));
  return v[Math.min(rank, v.length) - 1];
}

export function summary(xs) {
  const v = xs.filter((x) => Number.isFinite(x));
  return {
    n: v.length,
    median: median(v),
    min: v.length ? Math.min(...v) : NaN,
    max: v.length ? Math.max(...v) : NaN,
    p99: percentile(v, 99),
    samples: xs.map((x) => (Number.isFinite(x) ? round(x, 3) : null)),
  };
}

export function round(x, digits = 1) {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------- /proc

/** utime+stime in clock ticks, state letter, or null when the process is gone. */
export function procStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = s.slice(s.lastIndexOf(")") + 2).split(" ");
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    return { state: rest[0], ticks: Number(rest[11]) + Number(rest[12]) };
  } catch {
    return null;
  }
}

/**
 * A memory figure of /proc/PID/status in KiB: VmRSS (the default), or
 * RssAnon, the private part of it. The rest of VmRSS is RssFile: pages of the
 * program's binary and libraries, shared with every process of that binary
 * (every Node, every Python) and reclaimable by the kernel at any time.
 */
export function rssKiB(pid, field = "VmRSS") {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

export function fdCount(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

export function nofileLimit(pid) {
  try {
    const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(readFileSync(`/proc/${pid}/limits`, "utf8"));
    return m ? { soft: m[1], hard: m[2] } : null;
  } catch {
    return null;
  }
}

/** Alive and not a zombie (PID 1 here does not reap orphans; a zombie still answers kill 0). */
export function isAlive(pid) {
  const st = procStat(pid);
  return st !== null && st.state !== "Z" && st.state !== "X";
}

export function children(pid) {
  const out = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
        if (text) out.push(...text.split(/\s+/).map(Number));
      } catch {}
    }
  } catch {}
  return out;
}

export function descendants(pid, seen = new Set()) {
  for (const c of children(pid)) {
    if (seen.has(c)) continue;
    seen.add(c);
    descendants(c, seen);
  }
  return seen;
}

export function environOf(pid) {
  try {
    const env = {};
    for (const kv of readFileSync(`/proc/${pid}/environ`, "latin1").split("\0")) {
      const i = kv.indexOf("=");
      if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    return env;
  } catch {
    return {};
  }
}

/** True once every thread of pid is stopped (state T), i.e. a SIGSTOP has taken hold. */
export function allThreadsStopped(pid) {
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const state = s[s.lastIndexOf(")") + 2];
      if (state !== "T" && state !== "t") return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** CPU % of one core, RSS and its private part, of pids over a window; sampled at `parts` boundaries. */
export async function sampleCpu(pids, windowMs, parts) {
  const names = Object.keys(pids);
  const series = Object.fromEntries(names.map((n) => [n, { cpu: [], rssMiB: [], anonMiB: [] }]));
  let prev = Object.fromEntries(names.map((n) => [n, procStat(pids[n])?.ticks ?? NaN]));
  let prevAt = now();
  const first = { ...prev };
  const firstAt = prevAt;
  for (let i = 0; i < parts; i++) {
    await sleep(windowMs / parts);
    const at = now();
    for (const n of names) {
      const ticks = procStat(pids[n])?.ticks ?? NaN;
      series[n].cpu.push((((ticks - prev[n]) / CLK_TCK) * 1000 * 100) / (at - prevAt));
      series[n].rssMiB.push(rssKiB(pids[n]) / 1024);
      series[n].anonMiB.push(rssKiB(pids[n], "RssAnon") / 1024);
      prev[n] = ticks;
    }
    prevAt = at;
  }
  for (const n of names) {
    series[n].wholeWindowCpu = (((prev[n] - first[n]) / CLK_TCK) * 1000 * 100) / (prevAt - firstAt);
  }
  return series;
}

// ---------------------------------------------------------------- cleanup
//
// pids wrap quickly here (pid_max 32768, thousands of workers per scenario),
// so a pid alone may name someone else's process by the time the bench
// cleans up. Every entry is a pid plus its start time (field 22 of
// /proc/PID/stat), recorded when the bench learns the pid, and nothing is
// signalled unless the process there now started at that same time.

/** Start time in clock ticks since boot, or null when the pid is gone or a zombie. */
export function startTime(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    if (f[0] === "Z" || f[0] === "X") return null;
    return f[19];
  } catch {
    return null;
  }
}

const trees = new Map(); // pid -> start: supervisors whose whole tree is ours
const loose = new Map(); // pid -> start: single processes (workers, tools)

/** `start` may be given when known (e.g. read right after spawn); else it is read now. */
export function trackTree(pid, start = startTime(pid)) {
  if (pid && start) trees.set(pid, start);
}
export function trackPid(pid, start = startTime(pid)) {
  if (pid && start) loose.set(pid, start);
}

function same(pid, start) {
  return start !== null && startTime(pid) === start;
}

function kill(target, signal) {
  try {
    process.kill(target, signal);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILL every tracked supervisor with all its descendants, and every tracked process (and its group). */
export async function killEverything() {
  const victims = new Map();
  for (const [pid, start] of loose) if (same(pid, start)) victims.set(pid, start);
  for (const [pid, start] of trees) {
    if (!same(pid, start)) continue;
    // Collect the tree first: once the supervisor is dead its children are
    // reparented and /proc no longer says whose they were.
    for (const d of descendants(pid)) {
      const s = startTime(d);
      if (s) victims.set(d, s);
    }
    victims.set(pid, start);
  }
  for (const [pid, start] of trees) if (same(pid, start)) kill(pid, "SIGKILL");
  for (const [pid, start] of victims) {
    if (!same(pid, start)) continue;
    // Workers lead their own process group; only then is -pid theirs.
    if (processGroup(pid) === pid) kill(-pid, "SIGKILL");
    if (same(pid, start)) kill(pid, "SIGKILL");
  }
  const until = now() + 5000;
  let left = [...victims].filter(([pid, start]) => same(pid, start));
  while (left.length && now() < until) {
    await sleep(20);
    left = left.filter(([pid, start]) => same(pid, start));
  }
  trees.clear();
  loose.clear();
  return left.map(([pid]) => pid);
}

function processGroup(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[2]);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- small things the scenarios share

export function last(xs) {
  return xs[xs.length - 1];
}

/** k of xs at random. */
export function pick(xs, k) {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  if (a.length < k) throw new Error(`wanted ${k} workers, have ${a.length}`);
  return a.slice(0, k);
}
