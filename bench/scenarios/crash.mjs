// kill -9 a worker; the time from its exit to the replacement's spawn, backoff 0.
import { pidWatch } from "../lib/proc.mjs";
import { RUNNERS, checkVigilConfig } from "../lib/runners.mjs";
import { pick, round, sleep } from "../lib/util.mjs";

/**
 * kill -9 a random worker of `r`, `reps` times, each once the last
 * replacement is ready: ms from the exit (its pidfd readable) to a new child
 * of the supervisor, and to the supervisor's own report of it (vigild, the floor).
 */
export async function crashes(r, reps) {
  const gaps = [];
  const reported = [];
  for (let rep = 0; rep < reps; rep++) {
    const [pid] = pick(r.workerPids(), 1);
    const { result } = await pidWatch().replaced(pid, r.pid, 10_000);
    process.kill(pid, "SIGKILL");
    const x = await result;
    if (x.new_pid === null) {
      if (r.spawned) throw new Error(`${r.name}: no replacement for ${pid} within 10 s`);
      gaps.push(NaN);
      continue;
    }
    const exitMs = Number(BigInt(x.exit_ns) / 1000n) / 1000;
    gaps.push(Number(BigInt(x.spawn_ns) / 1000n) / 1000 - exitMs);
    if (r.spawned) reported.push((await r.waitFor(r.spawned(x.new_pid), 5000, "the spawned line")).at - exitMs);
    await r.readyAgain(x.new_pid, 60_000);
    await sleep(300);
  }
  return { gaps, reported };
}

export default async function crashRestart(ctx) {
  const { C, say, results, peerSkip } = ctx;
  const M = C.crashN;
  // Backoff 0 if the configuration allows it, else the least it accepts.
  let backoff = "0";
  const err = checkVigilConfig({ w: { command: ["true"], restart: { backoff_initial: "0", backoff_max: "1ms" } } });
  if (err) {
    backoff = "1ms";
    say(`crash: vigild refuses backoff_initial 0 (${err.split("\n")[0]}); using 1ms`);
  }
  const gap = {};
  const reported = {};
  for (const sys of ["f", "v"]) {
    const r = await RUNNERS[sys].workers({ programs: [{ name: "w", args: [], count: M }], restart: { backoff } });
    try {
      await r.ready(120_000);
      await sleep(C.settleMs);
      ({ gaps: gap[sys], reported: reported[sys] } = await crashes(r, C.crashReps));
      say(`crash ${sys}: exit to replacement ${gap[sys].map((x) => round(x)).join(", ")} ms`);
    } finally {
      await r.end();
    }
  }
  results.scenarios.crash = { backoffInitial: backoff, gapMs: gap, spawnedLineMs: reported };
  const peer = (p) => results.scenarios.idle100?.peerCrash?.[p] ?? peerSkip[p] ?? "not measured (idle100 not run)";
  ctx.addRow({
    scenario: `crash restart (kill -9), backoff ${backoff}`,
    figure: "exit to replacement spawned, ms",
    vigil: gap.v,
    baseline: gap.f,
    target: { max: 5 },
    pm2: peer("pm2"),
    sup: peer("sup"),
    note: "exit = the killed worker's pidfd readable (when the kernel tells the parent); spawned = the new child shows in /proc/PARENT/task/PARENT/children (0.5 ms polls; fork done, exec maybe not yet)",
  });
  ctx.addRow({
    scenario: `crash restart (kill -9), backoff ${backoff}`,
    figure: "exit to 'spawned' line (after exec), ms",
    vigil: reported.v,
    baseline: reported.f,
    target: { info: true },
    note: "as above, but up to the supervisor's own report that the replacement runs (vigild's `spawned` log line, the floor's spawned event) reaching the bench",
  });
}
