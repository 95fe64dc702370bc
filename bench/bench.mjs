// vigil's benchmark: every scenario of the issue, against the physical floor
// (bench/floor.mjs) measured in the same run, with PM2 and supervisord beside.
//
//   node bench/bench.mjs            (bench/run.sh sets up peers and limits first)
//   QUICK=1 node bench/bench.mjs    small N, short windows, 3 repetitions, no peers
//
// Environment: QUICK=1; BENCH_PEERS=1|0 (peers in QUICK mode too | not even in full); BENCH_ONLY=a,b
// (only these scenarios, named as their files in bench/scenarios/); BENCH_CONTAINER=1|0 (the
// real-systemd parts of sysrestart and output in QUICK mode too | not even in full).
// Each scenario is written once against the runners' interface (bench/lib/runners.mjs) and
// gets the context below. Prints progress lines starting with "#", then one table; writes
// bench/results/<timestamp>.json with every sample.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BENCH, REPO, VIGILD } from "./lib/proc.mjs";
import { RUNNERS } from "./lib/runners.mjs";
import { makeRow, printTable } from "./lib/table.mjs";
import { CLK_TCK, killEverything, now, round } from "./lib/util.mjs";

// In the order they run: idle100 comes before hang and crash, as it measures the peers' side of those two rows.
const SCENARIOS = ["startstop", "teardown", "idle100", "hang", "crash", "idle1200", "scale", "web", "webrestart", "sysrestart", "output"];

const QUICK = process.env.QUICK === "1";
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(",")) : null;
const WITH_PEERS = process.env.BENCH_PEERS ? process.env.BENCH_PEERS === "1" : !QUICK;
const WITH_CONTAINER = process.env.BENCH_CONTAINER ? process.env.BENCH_CONTAINER === "1" : !QUICK;
for (const name of ONLY ?? []) if (!SCENARIOS.includes(name)) throw new Error(`BENCH_ONLY: no scenario ${name} (${SCENARIOS.join(", ")})`);

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

const notRun = QUICK ? "not run in QUICK mode" : "not run (BENCH_PEERS=0)";
const peerSkip = { pm2: WITH_PEERS ? RUNNERS.p.unavailable() : notRun, sup: WITH_PEERS ? RUNNERS.s.unavailable() : notRun };
const results = {
  started: new Date().toISOString(),
  mode: QUICK ? "quick" : "full",
  config: C,
  environment: environment(),
  peers: { pm2: peerSkip.pm2 ?? RUNNERS.p.version(), supervisord: peerSkip.sup ?? RUNNERS.s.version() },
  scenarios: {},
  rows: [],
  errors: [],
};
const rows = results.rows;
for (const [peer, why] of Object.entries(peerSkip)) if (why) say(`skipping ${peer === "sup" ? "supervisord" : "PM2"}: ${why}`);

/** What every scenario gets. */
const ctx = {
  QUICK,
  C,
  say,
  results,
  peerSkip,
  withPeers: WITH_PEERS,
  withContainer: WITH_CONTAINER,
  addRow: (r) => rows.push(makeRow(r, peerSkip)),
  /** "v": vigil, "f": floor, "p": PM2, "s": supervisord (those that run), in an order that rotates with the repetition. */
  order(rep) {
    const all = ["f", "v", "p", "s"].filter((s) => !(s === "p" && peerSkip.pm2) && !(s === "s" && peerSkip.sup));
    const k = rep % all.length;
    return [...all.slice(k), ...all.slice(0, k)];
  },
};

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
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
  for (const name of SCENARIOS) {
    if (ONLY && !ONLY.has(name)) continue;
    const t = now();
    say(`== ${name}`);
    try {
      await (await import(`./scenarios/${name}.mjs`)).default(ctx);
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
  printTable(rows);
  if (results.errors.length) process.stdout.write(`errors:\n${results.errors.map((e) => `  ${e}`).join("\n")}\n`);
  const dir = join(BENCH, "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${results.started.replace(/[:.]/g, "-")}${QUICK ? "-quick" : ""}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
  process.stdout.write(`results: ${file} (${results.durationS} s)\n`);
  process.exitCode = results.errors.length ? 1 : 0;
}

await main();
