// vigil's benchmark: every scenario of the issue, against the physical floor
// (bench/floor.mjs) measured in the same run, with PM2 and supervisord beside.
//
//   node bench/bench.mjs            (bench/run.sh sets up peers and limits first)
//   QUICK=1 node bench/bench.mjs    small N, short windows, 3 repetitions, no peers
//
// Environment: QUICK=1; BENCH_PEERS=1|0 (peers in QUICK mode too | not even in full); BENCH_ONLY=a,b
// (only these scenarios: startstop, teardown, hang, crash, idle100, idle1200, scale, web, webrestart,
// sysrestart, output); BENCH_CONTAINER=1|0 (the real-systemd parts of sysrestart and output in QUICK
// mode too | not even in full). The web and output scenarios are in web.mjs and output.mjs.
// Prints progress lines starting with "#", then one table; writes
// bench/results/<timestamp>.json with every sample.
import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  BENCH,
  REPO,
  VIGILD,
  PY_BENCH,
  PM2_BIN,
  Floor,
  LineProcess,
  PidWatch,
  Pm2,
  Supervisord,
  Vigild,
  checkVigilConfig,
  pm2Available,
  scratch,
  supervisordAvailable,
} from "./lib/runners.mjs";
import {
  allThreadsStopped,
  environOf,
  fdCount,
  killEverything,
  nofileLimit,
  now,
  procStat,
  CLK_TCK,
  round,
  rssKiB,
  sampleCpu,
  sleep,
  startTime,
  summary,
} from "./lib/util.mjs";
import { supervisorRestart, webRestart, webThroughput } from "./web.mjs";
import { outputCost } from "./output.mjs";

const QUICK = process.env.QUICK === "1";
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(",")) : null;
const WITH_PEERS = process.env.BENCH_PEERS ? process.env.BENCH_PEERS === "1" : !QUICK;

// Sizes, windows and repetitions. QUICK keeps >= 3 repetitions wherever a median is shown.
const C = QUICK
  ? {
      reps: 3,
      peerReps: 3,
      startN: 20,
      settleMs: 300,
      teardownN: 20,
      teardownHang: 4,
      hangN: 30,
      hangK: 4,
      hangTimeout: "1s",
      hangTimeoutMs: 1000,
      crashN: 10,
      crashReps: 5,
      idleN: 20,
      idleWindowMs: 4000,
      idleParts: 4,
      idleSettleMs: 1000,
      peerHangWaitMs: 3000,
      bigPlain: 200,
      bigProto: 40,
      scrapes: 20,
      scalePlain: 150,
      scaleProto: 20,
      scaleReps: 3,
      scaleSettleMs: 300,
      scaleIdleMs: 1000,
    }
  : {
      reps: 5,
      peerReps: 5,
      startN: 100,
      settleMs: 1500,
      teardownN: 100,
      teardownHang: 20,
      hangN: 200,
      hangK: 20,
      hangTimeout: "2s",
      hangTimeoutMs: 2000,
      crashN: 20,
      crashReps: 15,
      idleN: 100,
      idleWindowMs: 60_000,
      idleParts: 6,
      idleSettleMs: 5000,
      peerHangWaitMs: 10_000,
      bigPlain: 1000,
      bigProto: 200,
      scrapes: 50,
      scalePlain: 1800,
      scaleProto: 200,
      scaleReps: 5,
      scaleSettleMs: 2000,
      scaleIdleMs: 10_000,
    };

const T0 = now();
const say = (msg) => process.stdout.write(`# [${((now() - T0) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);

const results = {
  started: new Date().toISOString(),
  mode: QUICK ? "quick" : "full",
  config: C,
  environment: environment(),
  peers: {},
  scenarios: {},
  rows: [],
  errors: [],
};
const rows = results.rows;

// ---------------------------------------------------------------- the scenarios

// idle100 comes before hang and crash: it measures the peers' side of those two rows.
const SCENARIOS = {
  startstop: startStop,
  teardown: teardownHang,
  idle100: idle100,
  hang: runningHang,
  crash: crashRestart,
  idle1200: idle1200,
  scale: scale,
  web: () => webThroughput(ctx()),
  webrestart: () => webRestart(ctx()),
  sysrestart: () => supervisorRestart(ctx()),
  output: () => outputCost(ctx()),
};

const WITH_CONTAINER = process.env.BENCH_CONTAINER ? process.env.BENCH_CONTAINER === "1" : !QUICK;

/** What the scenarios in other files (web.mjs, output.mjs) get from this one. */
function ctx() {
  return { QUICK, say, addRow, results, peerSkip, withPeers: WITH_PEERS, withContainer: WITH_CONTAINER };
}

const peerSkip = {
  pm2: WITH_PEERS ? pm2Available() : QUICK ? "not run in QUICK mode" : "not run (BENCH_PEERS=0)",
  sup: WITH_PEERS ? supervisordAvailable() : QUICK ? "not run in QUICK mode" : "not run (BENCH_PEERS=0)",
};
results.peers = { pm2: peerSkip.pm2 ?? pm2Version(), supervisord: peerSkip.sup ?? supervisordVersion() };
for (const [peer, why] of Object.entries(peerSkip)) if (why) say(`skipping ${peer === "sup" ? "supervisord" : "PM2"}: ${why}`);

/** "v": vigil, "f": floor, "p": PM2, "s": supervisord, in an order that rotates with the repetition. */
function order(rep, peers = true) {
  const all = ["f", "v", "p", "s"].filter((s) => peers || s === "f" || s === "v").filter((s) => !(s === "p" && peerSkip.pm2) && !(s === "s" && peerSkip.sup));
  const k = rep % all.length;
  return [...all.slice(k), ...all.slice(0, k)];
}

// 1 + 2: start N protocol workers (until all ready); stop them, each handler taking 200 ms.
async function startStop() {
  const N = C.startN;
  const start = { v: [], f: [], p: [], s: [] };
  const stop = { v: [], f: [], p: [], s: [] };
  const vigildStopMs = [];
  const pw = new PidWatch();
  const workerArgs = ["--handler-ms", "200"];
  for (let rep = 0; rep < C.reps; rep++) {
    for (const sys of order(rep)) {
      if ((sys === "p" || sys === "s") && rep >= C.peerReps) continue;
      if (sys === "v") {
        const v = new Vigild({
          w: {
            command: ["python3", PY_BENCH, ...workerArgs],
            instances: N,
            protocol: "on",
            heartbeat_timeout: "4s",
            ready_timeout: "2m",
            shutdown: { handlers_timeout: "2s", teardown: "destroy", timeout: "5s" },
          },
        });
        const ready = await v.allReady(180_000);
        start.v.push(ready.at - v.startedAt);
        await sleep(C.settleMs);
        stop.v.push(await v.stop(60_000));
        const sum = v.summaryLine();
        vigildStopMs.push(sum?.duration_ms);
        if (!sum || sum.clean !== N) results.errors.push(`startstop: vigild summary: ${sum?.msg ?? "none"}`);
        await v.cleanup();
      } else if (sys === "f") {
        const f = new Floor({
          groups: [{ name: "w", command: ["python3", PY_BENCH, ...workerArgs], count: N, protocol: true, heartbeat_timeout_ms: 4000 }],
          stop: { handlers_timeout_ms: 2000, timeout_ms: 5000, teardown: "destroy" },
        });
        const ready = await f.allReady(180_000);
        start.f.push(ready.at - f.startedAt);
        await sleep(C.settleMs);
        stop.f.push(await f.stop(60_000));
        await f.cleanup();
      } else if (sys === "p") {
        const p = new Pm2([{ name: "w", args: workerArgs, count: N, kill_timeout_ms: 5000 }]);
        start.p.push(await p.start(180_000));
        await sleep(C.settleMs);
        stop.p.push(await p.stop(pw, 120_000));
        await p.cleanup();
      } else {
        const s = new Supervisord([{ name: "w", args: workerArgs, count: N, stopwaitsecs: 5 }]);
        start.s.push((await s.ready(180_000)) - s.startedAt);
        await sleep(C.settleMs);
        stop.s.push(await s.stop(60_000));
        await s.cleanup();
      }
      say(`startstop rep ${rep + 1} ${sys}: start ${round(last(start[sys]))} ms, stop ${round(last(stop[sys]))} ms`);
    }
  }
  pw.close();
  results.scenarios.startstop = { N, start, stop, vigildReportedStopMs: vigildStopMs };
  addRow({
    scenario: `start ${N} Python protocol workers`,
    figure: "until all ready, ms",
    vigil: start.v,
    baseline: start.f,
    target: { ratio: 1.15 },
    pm2: start.p,
    sup: start.s,
    note: "PM2/supervisord: until every worker has installed its SIGTERM handler (they have no readiness protocol)",
  });
  addRow({
    scenario: `stop ${N} workers, handlers 200 ms`,
    figure: "SIGTERM to exit, ms",
    vigil: stop.v,
    baseline: stop.f,
    target: { ratio: 1.1 },
    pm2: stop.p,
    sup: stop.s,
    note: "PM2: `pm2 kill` until it returned and all processes were gone; supervisord and vigild: SIGTERM until the process exited",
  });
}

// 3: stop with some workers hanging in interpreter teardown, timeout 2 s.
async function teardownHang() {
  const N = C.teardownN;
  const H = C.teardownHang;
  const over = { v: [], f: [], p: [], s: [] };
  const forced = [];
  const pw = new PidWatch();
  const shutdown = { handlers_timeout: "1s", teardown: "destroy", teardown_hang_after: "1s", timeout: "2s" };
  for (let rep = 0; rep < C.reps; rep++) {
    for (const sys of order(rep)) {
      if ((sys === "p" || sys === "s") && rep >= C.peerReps) continue;
      let ms;
      if (sys === "v") {
        const v = new Vigild({
          ok: { command: ["python3", PY_BENCH], instances: N - H, protocol: "on", heartbeat_timeout: "4s", ready_timeout: "2m", shutdown },
          hang: { command: ["python3", PY_BENCH, "--teardown-hang"], instances: H, protocol: "on", heartbeat_timeout: "4s", ready_timeout: "2m", shutdown },
        });
        await v.allReady(180_000);
        await sleep(C.settleMs);
        ms = await v.stop(60_000);
        const sum = v.summaryLine();
        forced.push(sum?.forced);
        if (!sum || sum.forced !== H) results.errors.push(`teardown: vigild summary: ${sum?.msg ?? "none"}`);
        await v.cleanup();
      } else if (sys === "f") {
        const f = new Floor({
          groups: [
            { name: "ok", command: ["python3", PY_BENCH], count: N - H, protocol: true, heartbeat_timeout_ms: 4000 },
            { name: "hang", command: ["python3", PY_BENCH, "--teardown-hang"], count: H, protocol: true, heartbeat_timeout_ms: 4000 },
          ],
          stop: { handlers_timeout_ms: 1000, timeout_ms: 2000, teardown: "destroy" },
        });
        await f.allReady(180_000);
        await sleep(C.settleMs);
        ms = await f.stop(60_000);
        await f.cleanup();
      } else if (sys === "p") {
        const p = new Pm2([
          { name: "ok", args: [], count: N - H, kill_timeout_ms: 2000 },
          { name: "hang", args: ["--teardown-hang"], count: H, kill_timeout_ms: 2000 },
        ]);
        await p.start(180_000);
        await sleep(C.settleMs);
        ms = await p.stop(pw, 180_000);
        await p.cleanup();
      } else {
        const s = new Supervisord([
          { name: "ok", args: [], count: N - H, stopwaitsecs: 2 },
          { name: "hang", args: ["--teardown-hang"], count: H, stopwaitsecs: 2 },
        ]);
        await s.ready(180_000);
        await sleep(C.settleMs);
        ms = await s.stop(120_000);
        await s.cleanup();
      }
      over[sys].push(ms - 2000);
      say(`teardown rep ${rep + 1} ${sys}: stop ${round(ms)} ms (${round(ms - 2000)} ms past the 2 s timeout)`);
    }
  }
  pw.close();
  results.scenarios.teardown = { N, hanging: H, overMs: over, vigildForced: forced };
  addRow({
    scenario: `stop ${N} workers, ${H} hang in teardown, timeout 2 s`,
    figure: "stop time − 2 s, ms",
    stat: "p99",
    vigil: over.v,
    baseline: over.f,
    target: { max: 50 },
    pm2: over.p,
    sup: over.s,
    note: "p99 over repetitions (nearest rank: the largest of 5); baseline: the floor kills at 2 s too",
  });
}

// 4: SIGSTOP K of N heartbeating workers; how late past its deadline is each hang seen?
async function runningHang() {
  const N = C.hangN;
  const K = C.hangK;
  const T = C.hangTimeoutMs;
  const delay = { v: [], f: [] };
  const vigildOwn = [];
  for (const sys of ["f", "v"]) {
    let runner;
    if (sys === "v") {
      runner = new Vigild({
        w: {
          command: ["python3", PY_BENCH],
          instances: N,
          protocol: "on",
          heartbeat_timeout: C.hangTimeout,
          ready_timeout: "2m",
          restart: { limit: "10000 in 60s" },
        },
      });
    } else {
      runner = new Floor({
        groups: [{ name: "w", command: ["python3", PY_BENCH], count: N, protocol: true, heartbeat_timeout_ms: T }],
        restart: true,
        detect_hangs: true,
      });
    }
    try {
      await runner.allReady(180_000);
      await sleep(C.settleMs);
      for (let rep = 0; rep < C.reps; rep++) {
        const from = runner.lines.length;
        const victims = pick(runner.readyPids(), K);
        const watch = victims.map((pid) => {
          const env = environOf(pid);
          return { pid, slot: Number(env.VIGIL_HEARTBEAT_SLOT), fd: openSync(`/proc/${pid}/fd/${env.VIGIL_HEARTBEAT_FD}`, "r") };
        });
        for (const w of watch) process.kill(w.pid, "SIGSTOP");
        const stopUntil = now() + 2000;
        for (const w of watch) {
          while (!allThreadsStopped(w.pid) && now() < stopUntil) await sleep(1);
          const buf = Buffer.alloc(8);
          readSync(w.fd, buf, 0, 8, w.slot * 8);
          closeSync(w.fd);
          w.deadline = Number(buf.readBigUInt64LE(0) / 1000n) / 1000 + T;
        }
        const isHang =
          sys === "v"
            ? (pid) => (e) => e.pid === pid && e.phase === "running" && (e.msg ?? "").includes("hung in phase running")
            : (pid) => (e) => e.ev === "hung" && e.pid === pid;
        for (const w of watch) {
          const e = await runner.waitFor(isHang(w.pid), T + 15_000, `the hang of ${w.pid}`, from);
          delay[sys].push(e.at - w.deadline);
          if (sys === "v") vigildOwn.push(e.after_ms - T);
        }
        await runner.waitUntil(() => (runner.readyCount >= N ? true : undefined), 120_000, `${N} ready again`);
        const d = delay[sys].slice(-K);
        say(`hang rep ${rep + 1} ${sys}: ${K} hangs seen ${round(Math.min(...d))}..${round(Math.max(...d))} ms past their deadlines`);
        await sleep(C.settleMs);
      }
      await runner.stop(60_000);
    } finally {
      await runner.cleanup();
    }
  }
  results.scenarios.hang = { N, K, timeoutMs: T, delayMs: delay, vigildOwnAfterMsMinusTimeout: vigildOwn };
  addRow({
    scenario: `running hang: ${K} of ${N} heartbeating workers SIGSTOPped, timeout ${C.hangTimeout}`,
    figure: "seen past the deadline, ms",
    stat: "p99",
    vigil: delay.v,
    baseline: delay.f,
    target: { max: 100 },
    pm2: results.scenarios.idle100?.peerHang?.pm2 ?? peerSkip.pm2 ?? "not measured (idle100 not run)",
    sup: results.scenarios.idle100?.peerHang?.sup ?? peerSkip.sup ?? "not measured (idle100 not run)",
    note: `deadline = the stopped worker's last heartbeat (read from its slot) + timeout; seen = the log line reaching the bench. ${K * C.reps} hangs; vigild's own after_ms − timeout: p99 ${round(summary(vigildOwn).p99)} ms`,
  });
}

// 5: kill -9 a worker; time from its exit to the replacement's spawn.
async function crashRestart() {
  const M = C.crashN;
  const gap = { v: [], f: [] };
  const reported = { v: [], f: [] };
  const pw = new PidWatch();
  // Backoff 0 if the configuration allows it, else the least it accepts.
  let backoff = "0";
  const err = checkVigilConfig({ w: { command: ["true"], restart: { backoff_initial: "0", backoff_max: "1ms" } } });
  if (err) {
    backoff = "1ms";
    say(`crash: vigild refuses backoff_initial 0 (${err.split("\n")[0]}); using 1ms`);
  }
  results.scenarios.crash = { backoffInitial: backoff };
  for (const sys of ["f", "v"]) {
    const runner =
      sys === "v"
        ? new Vigild({
            w: {
              command: ["python3", PY_BENCH],
              instances: M,
              protocol: "on",
              heartbeat_timeout: "4s",
              ready_timeout: "2m",
              restart: { policy: "always", backoff_initial: backoff, backoff_max: "1ms", limit: "10000 in 60s" },
            },
          })
        : new Floor({ groups: [{ name: "w", command: ["python3", PY_BENCH], count: M, protocol: true, heartbeat_timeout_ms: 4000 }], restart: true });
    try {
      await runner.allReady(120_000);
      await sleep(C.settleMs);
      for (let rep = 0; rep < C.crashReps; rep++) {
        const [pid] = pick(runner.readyPids(), 1);
        const { result } = await pw.replaced(pid, runner.pid, 5000);
        process.kill(pid, "SIGKILL");
        const r = await result;
        if (r.new_pid === null) throw new Error(`${sys}: no replacement for ${pid} within 5 s`);
        const exitMs = Number(BigInt(r.exit_ns) / 1000n) / 1000;
        gap[sys].push(Number(BigInt(r.spawn_ns) / 1000n) / 1000 - exitMs);
        // The supervisor's own word that the replacement runs (after exec), as it reached the bench.
        const isSpawned = sys === "v" ? (e) => e.pid === r.new_pid && (e.msg ?? "").endsWith(" spawned") : (e) => e.ev === "spawned" && e.pid === r.new_pid;
        const e = await runner.waitFor(isSpawned, 5000, "the spawned line");
        reported[sys].push(e.at - exitMs);
        await runner.waitUntil(() => (runner.readyCount >= M ? true : undefined), 60_000, `${M} ready again`);
        await sleep(300);
      }
      say(`crash ${sys}: exit to replacement ${gap[sys].map((x) => round(x)).join(", ")} ms`);
      await runner.stop(60_000);
    } finally {
      await runner.cleanup();
    }
  }
  pw.close();
  Object.assign(results.scenarios.crash, { gapMs: gap, spawnedLineMs: reported });
  addRow({
    scenario: `crash restart (kill -9), backoff ${backoff}`,
    figure: "exit to replacement spawned, ms",
    vigil: gap.v,
    baseline: gap.f,
    target: { max: 5 },
    pm2: results.scenarios.idle100?.peerCrash?.pm2 ?? peerSkip.pm2 ?? "not measured (idle100 not run)",
    sup: results.scenarios.idle100?.peerCrash?.sup ?? peerSkip.sup ?? "not measured (idle100 not run)",
    note: "exit = the killed worker's pidfd readable (when the kernel tells the parent); spawned = the new child shows in /proc/PARENT/task/PARENT/children (0.5 ms polls; fork done, exec maybe not yet)",
  });
  addRow({
    scenario: `crash restart (kill -9), backoff ${backoff}`,
    figure: "exit to 'spawned' line (after exec), ms",
    vigil: reported.v,
    baseline: reported.f,
    target: { info: true },
    digits: 1,
    note: "as above, but up to the supervisor's own report that the replacement runs (vigild's `spawned` log line, the floor's spawned event) reaching the bench",
  });
}

// 6: idle with N protocol workers heartbeating every second: CPU and RSS of the supervisor.
// vigild, the floor, PM2 and supervisord run side by side, sampled over the same window.
async function idle100() {
  const N = C.idleN;
  const pids = {};
  const systems = {};
  const sc = (results.scenarios.idle100 = { N, windowMs: C.idleWindowMs, parts: C.idleParts });
  try {
    systems.v = new Vigild({ w: { command: ["python3", PY_BENCH], instances: N, protocol: "on", heartbeat_timeout: "4s", ready_timeout: "2m" } });
    await systems.v.allReady(180_000);
    pids.vigil = systems.v.pid;
    systems.f = new Floor({ groups: [{ name: "w", command: ["python3", PY_BENCH], count: N, protocol: true, heartbeat_timeout_ms: 4000 }] });
    await systems.f.allReady(180_000);
    pids.floor = systems.f.pid;
    if (!peerSkip.pm2) {
      systems.p = new Pm2([{ name: "w", args: [], count: N, kill_timeout_ms: 5000 }]);
      await systems.p.start(180_000);
      pids.pm2 = systems.p.godPid;
    }
    if (!peerSkip.sup) {
      systems.s = new Supervisord([{ name: "w", args: [], count: N, stopwaitsecs: 5 }]);
      await systems.s.ready(180_000);
      pids.sup = systems.s.pid;
    }
    say(`idle100: ${Object.keys(pids).join(", ")} up with ${N} workers each; settling ${C.idleSettleMs} ms, then ${C.idleWindowMs / 1000} s window`);
    await sleep(C.idleSettleMs);
    const s = await sampleCpu(pids, C.idleWindowMs, C.idleParts);
    sc.samples = s;
    say(`idle100: CPU % ${Object.entries(s).map(([k, x]) => `${k} ${round(x.wholeWindowCpu, 3)}`).join(", ")}`);

    // The peers' side of the hang and crash rows, on these same workers.
    sc.peerHang = {};
    sc.peerCrash = {};
    const peers = [
      ["pm2", systems.p, () => systems.p.workerPids(), () => systems.p.godPid, systems.p?.readyDir],
      ["sup", systems.s, () => systems.s.workerPids(), () => systems.s.pid, systems.s?.readyDir],
    ].filter(([, sys]) => sys);
    await Promise.all(
      peers.map(async ([name, , workerPids]) => {
        const victims = pick(workerPids(), 2).map((pid) => ({ pid, start: startTime(pid) }));
        for (const v of victims) process.kill(v.pid, "SIGSTOP");
        await sleep(C.peerHangWaitMs);
        const replaced = victims.filter((v) => startTime(v.pid) !== v.start || !workerPids().includes(v.pid)).length;
        for (const v of victims) if (startTime(v.pid) === v.start) process.kill(v.pid, "SIGCONT");
        sc.peerHang[name] = replaced === 0 ? `never (in ${C.peerHangWaitMs / 1000} s)` : `${replaced}/2 replaced`;
      }),
    );
    const pw = new PidWatch();
    for (const [name, , workerPids, parentPid, readyDir] of peers) {
      const gaps = [];
      for (let rep = 0; rep < C.peerReps; rep++) {
        const [pid] = pick(workerPids(), 1);
        const { result } = await pw.replaced(pid, parentPid(), 10_000);
        process.kill(pid, "SIGKILL");
        const r = await result;
        if (r.new_pid === null) {
          gaps.push(NaN);
          continue;
        }
        gaps.push((Number(BigInt(r.spawn_ns) - BigInt(r.exit_ns)) / 1e6));
        const until = now() + 30_000;
        while (!exists(join(readyDir, String(r.new_pid))) && now() < until) await sleep(20);
        await sleep(300);
      }
      sc.peerCrash[name] = gaps;
      say(`idle100: ${name} kill -9 to replacement ${gaps.map((x) => round(x)).join(", ")} ms`);
    }
    pw.close();
  } finally {
    for (const sys of Object.values(systems)) await gracefulEnd(sys);
  }
  const s = sc.samples;
  addRow({
    scenario: `idle: ${N} protocol workers, 1 heartbeat/s, ${C.idleWindowMs / 1000} s`,
    figure: "supervisor CPU, % of one core",
    vigil: s.vigil.cpu,
    baseline: s.floor.cpu,
    target: { max: 0.2 },
    pm2: s.pm2?.cpu ?? peerSkip.pm2,
    sup: s.sup?.cpu ?? peerSkip.sup,
    digits: 3,
    note: `median of ${C.idleParts} sub-windows of ${C.idleWindowMs / C.idleParts / 1000} s (utime+stime, ${CLK_TCK} ticks/s); whole window: vigil ${round(s.vigil.wholeWindowCpu, 3)} %, floor ${round(s.floor.wholeWindowCpu, 3)} %${s.pm2 ? `, PM2 ${round(s.pm2.wholeWindowCpu, 3)} %` : ""}${s.sup ? `, supervisord ${round(s.sup.wholeWindowCpu, 3)} %` : ""}. All four ran side by side`,
  });
  addRow({
    scenario: `idle: ${N} protocol workers, 1 heartbeat/s`,
    figure: "supervisor RSS, MiB",
    vigil: s.vigil.rssMiB,
    baseline: s.floor.rssMiB,
    target: { max: 60, belowPm2: true },
    pm2: s.pm2?.rssMiB ?? peerSkip.pm2,
    sup: s.sup?.rssMiB ?? peerSkip.sup,
    note: "VmRSS at the end of each sub-window; PM2: its God daemon",
  });
}

// 7 + 8: 1,000 plain + 200 protocol workers idle; then scrape /metrics.
async function idle1200() {
  const P = C.bigPlain;
  const Q = C.bigProto;
  const sc = (results.scenarios.idle1200 = { plain: P, protocol: Q, windowMs: C.idleWindowMs });
  let v, f, serve, bodyDir;
  try {
    v = new Vigild({
      plain: { command: ["sleep", "1000000"], instances: P },
      py: { command: ["python3", PY_BENCH], instances: Q, protocol: "on", heartbeat_timeout: "4s", ready_timeout: "3m" },
    });
    await v.allReady(300_000);
    f = new Floor({
      groups: [
        { name: "plain", command: ["sleep", "1000000"], count: P, protocol: false },
        { name: "py", command: ["python3", PY_BENCH], count: Q, protocol: true, heartbeat_timeout_ms: 4000 },
      ],
    });
    await f.allReady(300_000);
    say(`idle1200: vigild and the floor up with ${P} plain + ${Q} protocol workers each; ${C.idleWindowMs / 1000} s window`);
    await sleep(C.idleSettleMs);
    const s = await sampleCpu({ vigil: v.pid, floor: f.pid }, C.idleWindowMs, C.idleParts);
    sc.samples = s;
    say(`idle1200: CPU % vigil ${round(s.vigil.wholeWindowCpu, 3)}, floor ${round(s.floor.wholeWindowCpu, 3)}; RSS vigil ${round(last(s.vigil.rssMiB))} MiB`);

    // Scrapes: vigild's /metrics, then a static server with the same body.
    const url = await v.metricsUrl();
    const vigilScrape = await scrapeMany(url, C.scrapes, v.pid);
    bodyDir = scratch("scrape");
    const bodyFile = join(bodyDir, "metrics.txt");
    writeFileSync(bodyFile, vigilScrape.body);
    serve = new LineProcess(process.execPath, [join(BENCH, "serve.mjs"), bodyFile], { env: { PATH: process.env.PATH } });
    serve.name = "serve";
    const addr = await serve.waitFor((e) => typeof e.address === "string", 10_000, "the address");
    const floorScrape = await scrapeMany(addr.address, C.scrapes, serve.pid);
    sc.scrape = {
      workers: P + Q,
      bytes: vigilScrape.body.length,
      vigilMs: vigilScrape.ms,
      vigilCpuMsPerScrape: vigilScrape.cpuMsPer,
      floorMs: floorScrape.ms,
      floorCpuMsPerScrape: floorScrape.cpuMsPer,
    };
    say(`scrape: vigild median ${round(summary(vigilScrape.ms).median, 2)} ms (CPU ${round(vigilScrape.cpuMsPer, 2)} ms/scrape, ${vigilScrape.body.length} bytes), static server ${round(summary(floorScrape.ms).median, 2)} ms`);
  } finally {
    for (const sys of [v, f]) if (sys) await gracefulEnd(sys);
    if (serve) await serve.kill();
    if (bodyDir) rmSync(bodyDir, { recursive: true, force: true });
  }
  const s = sc.samples;
  addRow({
    scenario: `idle: ${P} plain + ${Q} protocol workers, ${C.idleWindowMs / 1000} s`,
    figure: "supervisor CPU, % of one core",
    vigil: s.vigil.cpu,
    baseline: s.floor.cpu,
    target: { max: 1 },
    digits: 3,
    note: `whole window: vigil ${round(s.vigil.wholeWindowCpu, 3)} %, floor ${round(s.floor.wholeWindowCpu, 3)} %; peers not run at this size`,
  });
  addRow({
    scenario: `idle: ${P} plain + ${Q} protocol workers`,
    figure: "supervisor RSS, MiB",
    vigil: s.vigil.rssMiB,
    baseline: s.floor.rssMiB,
    target: { max: 80 },
  });
  if (sc.scrape) {
    addRow({
      scenario: `scrape /metrics with ${P + Q} workers`,
      figure: "time per scrape, ms",
      vigil: sc.scrape.vigilMs,
      baseline: sc.scrape.floorMs,
      target: { max: 20 },
      digits: 2,
      note: `${C.scrapes} sequential GETs on one keep-alive connection, 50 ms apart; vigild CPU ${round(sc.scrape.vigilCpuMsPerScrape, 2)} ms per scrape; baseline: a bare node:http server sending the same ${sc.scrape.bytes} bytes`,
    });
  }
}

async function scrapeMany(url, count, pid) {
  const { Agent, request } = await import("node:http");
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const get = () =>
    new Promise((resolvePromise, reject) => {
      const t0 = now();
      const req = request(url, { agent }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolvePromise({ ms: now() - t0, body: Buffer.concat(chunks).toString("utf8"), status: res.statusCode }));
      });
      req.on("error", reject);
      req.end();
    });
  let body = "";
  for (let i = 0; i < 3; i++) body = (await get()).body; // warm up
  const ms = [];
  const ticks0 = procStat(pid).ticks;
  for (let i = 0; i < count; i++) {
    const r = await get();
    if (r.status !== 200) throw new Error(`GET ${url}: ${r.status}`);
    ms.push(r.ms);
    body = r.body;
    await sleep(50);
  }
  const cpuMsPer = (((procStat(pid).ticks - ticks0) / CLK_TCK) * 1000) / count;
  agent.destroy();
  return { ms, body, cpuMsPer };
}

// 9: 2,000 workers on this machine: start, idle CPU, stop; no fd limit hit.
async function scale() {
  const P = C.scalePlain;
  const Q = C.scaleProto;
  const N = P + Q;
  const m = { start: { v: [], f: [] }, stop: { v: [], f: [] }, cpu: { v: [], f: [] }, rss: { v: [], f: [] }, fds: [], limits: null, problems: [] };
  for (let rep = 0; rep < C.scaleReps; rep++) {
    for (const sys of rep % 2 ? ["v", "f"] : ["f", "v"]) {
      const runner =
        sys === "v"
          ? new Vigild({
              plain: { command: ["sleep", "1000000"], instances: P },
              py: { command: ["python3", PY_BENCH], instances: Q, protocol: "on", heartbeat_timeout: "4s", ready_timeout: "3m" },
            })
          : new Floor({
              groups: [
                { name: "plain", command: ["sleep", "1000000"], count: P, protocol: false },
                { name: "py", command: ["python3", PY_BENCH], count: Q, protocol: true, heartbeat_timeout_ms: 4000 },
              ],
            });
      try {
        const ready = await runner.allReady(600_000);
        m.start[sys].push(ready.at - runner.startedAt);
        await sleep(C.scaleSettleMs);
        const s = await sampleCpu({ x: runner.pid }, C.scaleIdleMs, 1);
        m.cpu[sys].push(s.x.wholeWindowCpu);
        m.rss[sys].push(last(s.x.rssMiB));
        if (sys === "v") {
          m.fds.push(fdCount(runner.pid));
          m.limits = nofileLimit(runner.pid);
        }
        m.stop[sys].push(await runner.stop(120_000));
        if (sys === "v") {
          const sum = runner.summaryLine();
          if (!sum || sum.clean + sum.skipped + sum.forced !== N) m.problems.push(`rep ${rep + 1}: summary ${sum?.msg ?? "missing"}`);
          const bad = runner.errorsLike(/EMFILE|ENFILE|too many open files|could not be started|FAILED/i);
          if (bad.length) m.problems.push(`rep ${rep + 1}: ${bad.length} error lines, e.g. ${bad[0].msg}`);
        }
      } finally {
        await runner.cleanup();
      }
      say(`scale rep ${rep + 1} ${sys}: start ${round(last(m.start[sys]))} ms, idle CPU ${round(last(m.cpu[sys]), 3)} %, stop ${round(last(m.stop[sys]))} ms${sys === "v" ? `, ${last(m.fds)} fds (limit ${m.limits?.soft})` : ""}`);
    }
  }
  results.scenarios.scale = { plain: P, protocol: Q, ...m };
  const works = m.problems.length === 0 && m.start.v.length === C.scaleReps && m.stop.v.length === C.scaleReps;
  const fdNote = `vigild held ${Math.max(...m.fds)} fds, RLIMIT_NOFILE ${m.limits?.soft}/${m.limits?.hard}; ${m.problems.length ? m.problems.join("; ") : "no EMFILE, no failed spawn"}`;
  addRow({ scenario: `scale: ${P} plain + ${Q} protocol workers`, figure: "start, until all ready, ms", vigil: m.start.v, baseline: m.start.f, target: { works }, note: fdNote });
  addRow({ scenario: `scale: ${N} workers`, figure: `idle CPU over ${C.scaleIdleMs / 1000} s, %`, vigil: m.cpu.v, baseline: m.cpu.f, target: { works }, digits: 3 });
  addRow({ scenario: `scale: ${N} workers`, figure: "stop, SIGTERM to exit, ms", vigil: m.stop.v, baseline: m.stop.f, target: { works } });
}

// ---------------------------------------------------------------- table

function addRow(r) {
  const stat = r.stat ?? "median";
  const vs = Array.isArray(r.vigil) ? summary(r.vigil) : null;
  const bs = Array.isArray(r.baseline) ? summary(r.baseline) : null;
  const vv = vs?.[stat];
  const bv = bs?.[stat];
  const ratio = Number.isFinite(vv) && Number.isFinite(bv) && bv > 0 ? vv / bv : NaN;
  const t = r.target;
  let ok;
  let targetText;
  // A peer that was not run shows why.
  if (Array.isArray(r.pm2) && r.pm2.length === 0) r.pm2 = peerSkip.pm2 ?? "-";
  if (Array.isArray(r.sup) && r.sup.length === 0) r.sup = peerSkip.sup ?? "-";
  const pm2s = Array.isArray(r.pm2) ? summary(r.pm2) : null;
  if (t.ratio !== undefined) {
    ok = ratio <= t.ratio;
    targetText = `<= ${t.ratio} x floor`;
  } else if (t.minRatio !== undefined) {
    ok = ratio >= t.minRatio;
    targetText = `>= ${t.minRatio} x floor`;
  } else if (t.max !== undefined) {
    ok = vv <= t.max;
    targetText = `<= ${t.max}`;
    if (t.belowPm2) {
      targetText += ", < PM2";
      if (pm2s) ok = ok && vv < pm2s[stat];
    }
    if (t.belowPeers) {
      // Ahead of every peer that ran: fewer, or none where none lost any.
      targetText += ", <= every peer";
      const peers = [r.pm2, r.sup, ...Object.values(r.others ?? {})].filter(Array.isArray).map((xs) => summary(xs)[stat]);
      ok = ok && peers.every((p) => vv <= p);
    }
  } else if (t.info) {
    ok = true;
    targetText = "(information)";
  } else {
    ok = t.works;
    targetText = "all work";
  }
  // vigil's side not run here (e.g. no container in QUICK mode): no verdict.
  const skipped = !Array.isArray(r.vigil);
  if (skipped) targetText += " (not measured)";
  rows.push({
    scenario: r.scenario,
    figure: r.figure,
    stat,
    vigil: vs ?? (typeof r.vigil === "string" ? r.vigil : null),
    skipped,
    baseline: bs,
    ratio,
    target: targetText,
    pm2: pm2s ?? r.pm2 ?? null,
    supervisord: Array.isArray(r.sup) ? summary(r.sup) : r.sup ?? null,
    others: r.others ? Object.fromEntries(Object.entries(r.others).map(([k, v]) => [k, Array.isArray(v) ? summary(v) : v ?? null])) : null,
    ok: Boolean(ok),
    note: r.note ?? null,
    digits: r.digits ?? 1,
  });
}

function cell(x, stat, digits) {
  if (x === null || x === undefined) return "-";
  if (typeof x === "string") return x;
  const fmt = (v) => (Number.isFinite(v) ? String(round(v, digits)) : "n/a");
  const head = stat === "p99" ? `p99 ${fmt(x.p99)}` : stat === "max" ? `max ${fmt(x.max)}` : fmt(x.median);
  return `${head} [${fmt(x.min)}-${fmt(x.max)}] n=${x.n}`;
}

function printTable() {
  // A last column for the peers only some scenarios have (gunicorn's own HUP, vigil without vigil.socket).
  const withOthers = rows.some((r) => r.others);
  const head = ["scenario", "figure", "vigil", "baseline (floor)", "ratio", "target", "PM2", "supervisord", "ok?", ...(withOthers ? ["others"] : [])];
  const body = rows.map((r) => [
    r.scenario,
    r.figure,
    cell(r.vigil, r.stat, r.digits),
    cell(r.baseline, r.stat, r.digits),
    Number.isFinite(r.ratio) ? `${round(r.ratio, 2)}` : "n/a",
    r.target,
    cell(r.pm2, r.stat, r.digits),
    cell(r.supervisord, r.stat, r.digits),
    r.skipped ? "-" : r.ok ? "ok" : "MISS",
    ...(withOthers ? [r.others ? Object.entries(r.others).map(([k, v]) => `${k}: ${cell(v, r.stat, r.digits)}`).join("; ") : ""] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
  const line = (cols) => "| " + cols.map((c, i) => String(c).padEnd(widths[i])).join(" | ") + " |";
  const out = [line(head), "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|", ...body.map(line)];
  process.stdout.write("\n" + out.join("\n") + "\n\n");
  process.stdout.write("values: median [min-max] n=repetitions (p99 or max where marked); ms unless the figure says otherwise; ratio = vigil / floor (or vigil / its own steady figure where the baseline says so), same statistic\n");
  rows.forEach((r, i) => r.note && process.stdout.write(`  ${i + 1}. ${r.scenario}: ${r.note}\n`));
}

// ---------------------------------------------------------------- plumbing

function last(xs) {
  return xs[xs.length - 1];
}

function pick(xs, k) {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  if (a.length < k) throw new Error(`wanted ${k} workers, have ${a.length}`);
  return a.slice(0, k);
}

function exists(path) {
  try {
    readFileSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Stops a runner the way its users would, without measuring; the trap kills what is left. */
async function gracefulEnd(sys) {
  try {
    if (sys instanceof Pm2) await sys.cleanup();
    else {
      if (sys.exitAt === null) await sys.stop(30_000).catch(() => {});
      await sys.cleanup();
    }
  } catch (err) {
    say(`cleanup: ${err.message.split("\n")[0]}`);
  }
}

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

function pm2Version() {
  try {
    return JSON.parse(readFileSync(join(PM2_BIN, "../../package.json"), "utf8")).version;
  } catch {
    return null;
  }
}

function supervisordVersion() {
  return sh("supervisord", ["--version"]);
}

function environment() {
  return {
    node: process.version,
    python: sh("python3", ["--version"]),
    kernel: sh("uname", ["-r"]),
    cpus: Number(sh("nproc", [])),
    clk_tck: CLK_TCK,
    nofile: sh("sh", ["-c", "ulimit -n"]),
    vigil_commit: sh("git", ["-C", REPO, "rev-parse", "HEAD"]),
    vigil_dirty: (sh("git", ["-C", REPO, "status", "--porcelain", "daemon", "lib"]) ?? "") !== "",
    vigild: VIGILD,
  };
}

async function main() {
  say(`vigil bench, ${QUICK ? "QUICK" : "full"} mode; node ${process.version}; RLIMIT_NOFILE ${results.environment.nofile}`);
  let stopping = false;
  const onSignal = async (sig) => {
    if (stopping) return;
    stopping = true;
    say(`${sig}: killing everything the bench started`);
    await killEverything();
    process.exit(130);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  for (const [name, fn] of Object.entries(SCENARIOS)) {
    if (ONLY && !ONLY.has(name)) continue;
    const t = now();
    say(`== ${name}`);
    try {
      await fn();
    } catch (err) {
      say(`!! ${name} failed: ${err.stack ?? err}`);
      results.errors.push(`${name}: ${String(err.message ?? err).split("\n")[0]}`);
      rows.push({ scenario: name, figure: "ERROR", stat: "median", vigil: null, baseline: null, ratio: NaN, target: "-", pm2: null, supervisord: null, ok: false, note: String(err.message ?? err).split("\n")[0], digits: 1 });
    } finally {
      const left = await killEverything();
      if (left.length) {
        say(`!! ${left.length} processes still alive after ${name}: ${left.slice(0, 10).join(" ")}`);
        results.errors.push(`${name}: ${left.length} processes left alive`);
      }
      say(`   ${name} took ${round((now() - t) / 1000)} s`);
    }
  }
  results.finished = new Date().toISOString();
  results.durationS = round((now() - T0) / 1000);
  printTable();
  if (results.errors.length) process.stdout.write(`errors:\n${results.errors.map((e) => `  ${e}`).join("\n")}\n`);
  const dir = join(BENCH, "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${results.started.replace(/[:.]/g, "-")}${QUICK ? "-quick" : ""}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
  process.stdout.write(`results: ${file} (${results.durationS} s)\n`);
  process.exitCode = results.errors.length ? 1 : 0;
}

await main();
