// N protocol workers heartbeating every second, idle: the supervisor's CPU and RSS.
// All four systems run side by side and are sampled over the same window; then
// the peers' side of the hang and crash rows is measured on these same workers.
import { NAMES, RUNNERS } from "../lib/runners.mjs";
import { CLK_TCK, pick, round, sampleCpu, sleep, startTime } from "../lib/util.mjs";
import { crashes } from "./crash.mjs";

export default async function idle100(ctx) {
  const { C, say, results, peerSkip } = ctx;
  const N = C.idleN;
  const up = {};
  const sc = (results.scenarios.idle100 = { N, windowMs: C.idleWindowMs, parts: C.idleParts });
  try {
    for (const sys of ["v", "f", "p", "s"].filter((s) => ctx.order(0).includes(s))) {
      up[sys] = await RUNNERS[sys].workers({ programs: [{ name: "w", args: [], count: N }] });
      await up[sys].ready(180_000);
    }
    const key = { v: "vigil", f: "floor", p: "pm2", s: "sup" };
    const pids = Object.fromEntries(Object.entries(up).map(([sys, r]) => [key[sys], r.pid]));
    say(`idle100: ${Object.keys(pids).join(", ")} up with ${N} workers each; settling ${C.idleSettleMs} ms, then ${C.idleWindowMs / 1000} s window`);
    await sleep(C.idleSettleMs);
    const s = (sc.samples = await sampleCpu(pids, C.idleWindowMs, C.idleParts));
    say(`idle100: CPU % ${Object.entries(s).map(([k, x]) => `${k} ${round(x.wholeWindowCpu, 3)}`).join(", ")}`);

    // The peers: do they ever notice a SIGSTOPped worker? How soon do they replace a killed one?
    const peers = ["p", "s"].filter((sys) => up[sys]);
    sc.peerHang = {};
    sc.peerCrash = {};
    await Promise.all(
      peers.map(async (sys) => {
        const victims = pick(up[sys].workerPids(), 2).map((pid) => ({ pid, start: startTime(pid) }));
        for (const v of victims) process.kill(v.pid, "SIGSTOP");
        await sleep(C.peerHangWaitMs);
        const replaced = victims.filter((v) => startTime(v.pid) !== v.start || !up[sys].workerPids().includes(v.pid)).length;
        for (const v of victims) if (startTime(v.pid) === v.start) process.kill(v.pid, "SIGCONT");
        sc.peerHang[key[sys]] = replaced === 0 ? `never (in ${C.peerHangWaitMs / 1000} s)` : `${replaced}/2 replaced`;
      }),
    );
    for (const sys of peers) {
      const { gaps } = await crashes(up[sys], C.peerReps);
      sc.peerCrash[key[sys]] = gaps;
      say(`idle100: ${NAMES[sys]} kill -9 to replacement ${gaps.map((x) => round(x)).join(", ")} ms`);
    }
  } finally {
    for (const r of Object.values(up)) await r.end();
  }
  const s = sc.samples;
  ctx.addRow({
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
  ctx.addRow({
    scenario: `idle: ${N} protocol workers, 1 heartbeat/s`,
    figure: "supervisor RSS, MiB",
    vigil: s.vigil.rssMiB,
    baseline: s.floor.rssMiB,
    target: { max: 60, belowPm2: true },
    pm2: s.pm2?.rssMiB ?? peerSkip.pm2,
    sup: s.sup?.rssMiB ?? peerSkip.sup,
    note: "VmRSS at the end of each sub-window; PM2: its God daemon",
  });
  ctx.addRow({
    scenario: `idle: ${N} protocol workers, 1 heartbeat/s`,
    figure: "supervisor private memory (RssAnon), MiB",
    target: { info: true },
    vigil: s.vigil.anonMiB,
    baseline: s.floor.anonMiB,
    pm2: s.pm2?.anonMiB ?? peerSkip.pm2,
    sup: s.sup?.anonMiB ?? peerSkip.sup,
    note: "the RSS above less its file-backed pages (the node or python binary and libraries, shared by every process of that binary and reclaimable)",
  });
}
