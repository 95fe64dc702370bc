// Thousands of workers on this machine: start, idle CPU, stop; no descriptor limit hit.
import { RUNNERS } from "../lib/runners.mjs";
import { fdCount, last, nofileLimit, round, sampleCpu, sleep } from "../lib/util.mjs";

export default async function scale(ctx) {
  const { C, say, results } = ctx;
  const P = C.scalePlain;
  const Q = C.scaleProto;
  const N = P + Q;
  const spec = { programs: [{ name: "plain", command: ["sleep", "1000000"], count: P }, { name: "py", args: [], count: Q }] };
  const m = { start: { v: [], f: [] }, stop: { v: [], f: [] }, cpu: { v: [], f: [] }, rss: { v: [], f: [] }, fds: [], limits: null, problems: [] };
  for (let rep = 0; rep < C.scaleReps; rep++) {
    for (const sys of rep % 2 ? ["v", "f"] : ["f", "v"]) {
      const r = await RUNNERS[sys].workers(spec);
      try {
        m.start[sys].push(await r.ready(600_000));
        await sleep(C.scaleSettleMs);
        const s = await sampleCpu({ x: r.pid }, C.scaleIdleMs, 1);
        m.cpu[sys].push(s.x.wholeWindowCpu);
        m.rss[sys].push(last(s.x.rssMiB));
        if (sys === "v") {
          m.fds.push(fdCount(r.pid));
          m.limits = nofileLimit(r.pid);
        }
        m.stop[sys].push(await r.stop(120_000));
        if (sys === "v") {
          const sum = r.summaryLine();
          if (!sum || sum.clean + sum.skipped + sum.forced !== N) m.problems.push(`rep ${rep + 1}: summary ${sum?.msg ?? "missing"}`);
          const bad = r.errorsLike(/EMFILE|ENFILE|too many open files|could not be started|FAILED/i);
          if (bad.length) m.problems.push(`rep ${rep + 1}: ${bad.length} error lines, e.g. ${bad[0].msg}`);
        }
      } finally {
        await r.end();
      }
      say(`scale rep ${rep + 1} ${sys}: start ${round(last(m.start[sys]))} ms, idle CPU ${round(last(m.cpu[sys]), 3)} %, stop ${round(last(m.stop[sys]))} ms${sys === "v" ? `, ${last(m.fds)} fds (limit ${m.limits?.soft})` : ""}`);
    }
  }
  results.scenarios.scale = { plain: P, protocol: Q, ...m };
  const works = m.problems.length === 0 && m.start.v.length === C.scaleReps && m.stop.v.length === C.scaleReps;
  const fdNote = `vigild held ${Math.max(...m.fds)} fds, RLIMIT_NOFILE ${m.limits?.soft}/${m.limits?.hard}; ${m.problems.length ? m.problems.join("; ") : "no EMFILE, no failed spawn"}`;
  ctx.addRow({ scenario: `scale: ${P} plain + ${Q} protocol workers`, figure: "start, until all ready, ms", vigil: m.start.v, baseline: m.start.f, target: { works }, note: fdNote });
  ctx.addRow({ scenario: `scale: ${N} workers`, figure: `idle CPU over ${C.scaleIdleMs / 1000} s, %`, vigil: m.cpu.v, baseline: m.cpu.f, target: { works }, digits: 3 });
  ctx.addRow({ scenario: `scale: ${N} workers`, figure: "stop, SIGTERM to exit, ms", vigil: m.stop.v, baseline: m.stop.f, target: { works } });
}
