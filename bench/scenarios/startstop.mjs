// Start N protocol workers until all are ready; stop them, each shutdown handler taking 200 ms.
import { RUNNERS } from "../lib/runners.mjs";
import { last, round, sleep } from "../lib/util.mjs";

/** Each system in turn, C.reps times: start the workers, let them settle, stop them (ms each). */
export async function startSettleStop(ctx, name, spec) {
  const start = { v: [], f: [], p: [], s: [] };
  const stop = { v: [], f: [], p: [], s: [] };
  const summaries = [];
  for (let rep = 0; rep < ctx.C.reps; rep++) {
    for (const sys of ctx.order(rep)) {
      const r = await RUNNERS[sys].workers(spec);
      try {
        start[sys].push(await r.ready(180_000));
        await sleep(ctx.C.settleMs);
        stop[sys].push(await r.stop(180_000));
        if (sys === "v") summaries.push(r.summaryLine());
      } finally {
        await r.end();
      }
      ctx.say(`${name} rep ${rep + 1} ${sys}: start ${round(last(start[sys]))} ms, stop ${round(last(stop[sys]))} ms`);
    }
  }
  return { start, stop, summaries };
}

export default async function startStop(ctx) {
  const N = ctx.C.startN;
  const spec = { programs: [{ name: "w", args: ["--handler-ms", "200"], count: N }], stop: { handlersMs: 2000, timeoutMs: 5000 } };
  const { start, stop, summaries } = await startSettleStop(ctx, "startstop", spec);
  for (const sum of summaries) if (!sum || sum.clean !== N) ctx.results.errors.push(`startstop: vigild summary: ${sum?.msg ?? "none"}`);
  ctx.results.scenarios.startstop = { N, start, stop, vigildReportedStopMs: summaries.map((s) => s?.duration_ms) };
  ctx.addRow({
    scenario: `start ${N} Python protocol workers`,
    figure: "until all ready, ms",
    vigil: start.v,
    baseline: start.f,
    target: { ratio: 1.15 },
    pm2: start.p,
    sup: start.s,
    note: "PM2/supervisord: until every worker has installed its SIGTERM handler (they have no readiness protocol)",
  });
  ctx.addRow({
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
