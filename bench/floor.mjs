// The physical floor: the least a program can do to run the same workers.
//
//   node bench/floor.mjs SPEC.json
//
// It spawns the workers exactly as vigild does (own process group, the vigil
// protocol socket on fd 3 and the shared heartbeat file on fd 4 for protocol
// workers, PATH and the VIGIL_* variables), waits for them, and supervises
// nothing: no logging of their output, no metrics, no state machine. What the
// bench measures on it is the cost of the work itself, in the same run and on
// the same machine as vigild.
//
// SPEC: {
//   groups: [{ name, command: [...], count, protocol: bool, heartbeat_timeout_ms }],
//   stop: { handlers_timeout_ms, timeout_ms, teardown },   // on SIGTERM
//   restart: bool,          // respawn a worker that exits on its own, at once
//   detect_hangs: bool,     // the heartbeat check vigild does, and nothing more
// }
//
// Writes one JSON object per line on stdout:
//   {"ev":"pids","pids":[...]}                 after every worker is spawned
//   {"ev":"ready","n":N}                       once every worker is ready
//   {"ev":"exited","pid":P}, {"ev":"spawned","pid":P,"old":Q}   with restart
//   {"ev":"ready_one","pid":P}                 a protocol worker ready after that
//   {"ev":"hung","pid":P,"last_beat_ms":B,"deadline_ms":D}      with detect_hangs
//   {"ev":"stopped","ms":M}                    then exits 0
import { spawn } from "node:child_process";
import { closeSync, ftruncateSync, openSync, readFileSync, readSync, unlinkSync } from "node:fs";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const now = () => Number(process.hrtime.bigint() / 1000n) / 1000; // CLOCK_MONOTONIC ms
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const totalSlots = spec.groups.reduce((n, g) => n + (g.protocol && g.heartbeat_timeout_ms > 0 ? g.count : 0), 0);
const hbPath = `/dev/shm/vigil-bench-floor-${process.pid}`;
const hbFd = openSync(hbPath, "wx+", 0o600);
unlinkSync(hbPath);
ftruncateSync(hbFd, Math.max(1, totalSlots) * 8);

const workers = new Set();
let unready = 0;
let stopping = false;

function start(group, index, slot) {
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", VIGIL_PROGRAM: group.name, VIGIL_WORKER: String(index) };
  const stdio = ["ignore", "ignore", "ignore"];
  if (group.protocol) {
    stdio.push("pipe");
    env.VIGIL_FD = "3";
    env.VIGIL_TEARDOWN = spec.stop?.teardown ?? "destroy";
    if (slot !== null) {
      stdio.push(hbFd);
      env.VIGIL_HEARTBEAT_FD = "4";
      env.VIGIL_HEARTBEAT_SLOT = String(slot);
      env.VIGIL_HEARTBEAT_INTERVAL_MS = String(Math.max(1, Math.floor(group.heartbeat_timeout_ms / 4)));
    }
  }
  const child = spawn(group.command[0], group.command.slice(1), { env, stdio, detached: true });
  const w = { group, index, slot, child, pid: child.pid, ready: !group.protocol, lastBeat: 0, exited: false };
  workers.add(w);
  if (!w.ready) unready++;
  if (group.protocol) {
    const sock = child.stdio[3];
    let pending = "";
    sock.setEncoding("utf8");
    sock.on("data", (chunk) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf("\n")) !== -1) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (!w.ready && line.includes('"type":"ready"')) onReady(w);
      }
    });
    sock.on("error", () => {});
    w.sock = sock;
  }
  child.on("exit", () => onExit(w));
  return w;
}

function onReady(w) {
  w.ready = true;
  w.lastBeat = now();
  unready--;
  if (spec.detect_hangs && w.slot !== null) arm(w.lastBeat + w.group.heartbeat_timeout_ms);
  if (announcedReady) say({ ev: "ready_one", pid: w.pid });
  else if (unready === 0) {
    announcedReady = true;
    say({ ev: "ready", n: workers.size });
  }
}
let announcedReady = false;

function onExit(w) {
  w.exited = true;
  workers.delete(w);
  if (!w.ready) unready--;
  w.sock?.destroy();
  try {
    process.kill(-w.pid, "SIGKILL"); // whatever it forked goes with it
  } catch {}
  if (stopping) {
    if (workers.size === 0) finish();
    return;
  }
  if (spec.restart) {
    say({ ev: "exited", pid: w.pid });
    const next = start(w.group, w.index, w.slot);
    say({ ev: "spawned", pid: next.pid, old: w.pid });
  }
}

// The hang check, as vigild does it (daemon/worker/heartbeat.ts): one timer at the earliest
// deadline, one read of the whole heartbeat file when it fires.
let timer = null;
let timerAt = Infinity;
const hbBuf = Buffer.alloc(Math.max(1, totalSlots) * 8);
function arm(at) {
  if (at >= timerAt) return;
  clearTimeout(timer);
  timerAt = at;
  timer = setTimeout(function fire() {
    const left = timerAt - now();
    if (left > 0) {
      timer = setTimeout(fire, Math.ceil(left));
      return;
    }
    check();
  }, Math.max(0, Math.ceil(at - now())));
}
function check() {
  timer = null;
  timerAt = Infinity;
  readSync(hbFd, hbBuf, 0, hbBuf.length, 0);
  const t = now();
  let earliest = Infinity;
  for (const w of workers) {
    if (!w.ready || w.slot === null || w.hung || w.exited) continue;
    const beat = Number(hbBuf.readBigUInt64LE(w.slot * 8) / 1000n) / 1000;
    w.lastBeat = Math.max(w.lastBeat, beat);
    const deadline = w.lastBeat + w.group.heartbeat_timeout_ms;
    if (deadline <= t) {
      w.hung = true;
      say({ ev: "hung", pid: w.pid, last_beat_ms: w.lastBeat, deadline_ms: deadline });
      try {
        process.kill(-w.pid, "SIGKILL");
      } catch {}
    } else earliest = Math.min(earliest, deadline);
  }
  if (earliest !== Infinity) arm(earliest);
}

let stopStarted = 0;
function stop() {
  if (stopping) return;
  stopping = true;
  stopStarted = now();
  clearTimeout(timer);
  const st = spec.stop ?? {};
  const message =
    JSON.stringify({
      type: "shutdown",
      reason: "stop",
      teardown: st.teardown ?? "destroy",
      handlers_timeout_ms: st.handlers_timeout_ms ?? 2000,
      deadline_ms: st.timeout_ms ?? 5000,
    }) + "\n";
  for (const w of workers) {
    if (w.group.protocol) w.sock.write(message);
    else {
      try {
        process.kill(-w.pid, w.group.signal ?? "SIGTERM");
      } catch {}
    }
  }
  setTimeout(() => {
    for (const w of workers) {
      try {
        process.kill(-w.pid, "SIGKILL");
      } catch {}
    }
  }, st.timeout_ms ?? 5000).unref();
  if (workers.size === 0) finish();
}

function finish() {
  say({ ev: "stopped", ms: Math.round((now() - stopStarted) * 10) / 10 });
  closeSync(hbFd);
  process.exit(0);
}

process.on("SIGTERM", stop);
process.on("SIGINT", stop);

let slotCounter = 0;
for (const group of spec.groups) {
  for (let i = 0; i < group.count; i++) {
    const slot = group.protocol && group.heartbeat_timeout_ms > 0 ? slotCounter++ : null;
    start(group, i, slot);
  }
}
say({ ev: "pids", pids: [...workers].map((w) => w.pid) });
if (unready === 0) {
  announcedReady = true;
  say({ ev: "ready", n: workers.size });
}
