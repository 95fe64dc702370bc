// SIGSTOP K of N heartbeating workers: how long after its deadline is each hang reported?
import { closeSync, openSync, readSync } from "node:fs";
import { RUNNERS } from "../lib/runners.mjs";
import { allThreadsStopped, environOf, now, pick, round, sleep, summary } from "../lib/util.mjs";

/** The deadline of a stopped worker: its last heartbeat, read from its own slot of the heartbeat file, + timeout. */
async function deadline(pid, timeoutMs) {
  const env = environOf(pid);
  if (env.VIGIL_HEARTBEAT_FD === undefined) throw new Error(`worker ${pid}: no heartbeat file (gone already?)`);
  const fd = openSync(`/proc/${pid}/fd/${env.VIGIL_HEARTBEAT_FD}`, "r");
  try {
    const until = now() + 2000;
    while (!allThreadsStopped(pid) && now() < until) await sleep(1);
    const buf = Buffer.alloc(8);
    readSync(fd, buf, 0, 8, Number(env.VIGIL_HEARTBEAT_SLOT) * 8);
    return Number(buf.readBigUInt64LE(0) / 1000n) / 1000 + timeoutMs;
  } finally {
    closeSync(fd);
  }
}

export default async function runningHang(ctx) {
  const { C, say, results, peerSkip } = ctx;
  const N = C.hangN;
  const K = C.hangK;
  const T = C.hangTimeoutMs;
  const delay = { v: [], f: [] };
  const vigildOwn = [];
  for (const sys of ["f", "v"]) {
    const r = await RUNNERS[sys].workers({ programs: [{ name: "w", args: [], count: N }], heartbeatMs: T, restart: {}, hangs: true });
    try {
      await r.ready(180_000);
      await sleep(C.settleMs);
      for (let rep = 0; rep < C.reps; rep++) {
        const from = r.lines.length;
        const victims = pick(r.workerPids(), K);
        for (const pid of victims) process.kill(pid, "SIGSTOP");
        const deadlines = [];
        for (const pid of victims) deadlines.push(await deadline(pid, T));
        for (const [i, pid] of victims.entries()) {
          const e = await r.waitFor(r.hung(pid), T + 15_000, `the hang of ${pid}`, from);
          delay[sys].push(e.at - deadlines[i]);
          if (sys === "v") vigildOwn.push(e.after_ms - T);
        }
        // All N ready again, none of them a victim still on its way out.
        const back = () => (r.workerPids().length >= N && !r.workerPids().some((p) => victims.includes(p)) ? true : undefined);
        await r.waitUntil(back, 120_000, `${N} ready again`);
        const d = delay[sys].slice(-K);
        say(`hang rep ${rep + 1} ${sys}: ${K} hangs seen ${round(Math.min(...d))}..${round(Math.max(...d))} ms past their deadlines`);
        await sleep(C.settleMs);
      }
    } finally {
      await r.end();
    }
  }
  results.scenarios.hang = { N, K, timeoutMs: T, delayMs: delay, vigildOwnAfterMsMinusTimeout: vigildOwn };
  const peer = (p) => results.scenarios.idle100?.peerHang?.[p] ?? peerSkip[p] ?? "not measured (idle100 not run)";
  ctx.addRow({
    scenario: `running hang: ${K} of ${N} heartbeating workers SIGSTOPped, timeout ${C.hangTimeout}`,
    figure: "seen past the deadline, ms",
    stat: "p99",
    vigil: delay.v,
    baseline: delay.f,
    target: { max: 100 },
    pm2: peer("pm2"),
    sup: peer("sup"),
    note: `deadline = the stopped worker's last heartbeat (read from its slot) + timeout; seen = the log line reaching the bench. ${K * C.reps} hangs; vigild's own after_ms − timeout: p99 ${round(summary(vigildOwn).p99)} ms`,
  });
}
