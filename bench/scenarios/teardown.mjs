// Stop N workers of which H hang in interpreter teardown, timeout 2 s: how long past the timeout?
import { startSettleStop } from "./startstop.mjs";

export default async function teardownHang(ctx) {
  const N = ctx.C.teardownN;
  const H = ctx.C.teardownHang;
  const spec = {
    programs: [
      { name: "ok", args: [], count: N - H },
      { name: "hang", args: ["--teardown-hang"], count: H },
    ],
    stop: { handlersMs: 1000, teardownHangAfterMs: 1000, timeoutMs: 2000 },
  };
  const { stop, summaries } = await startSettleStop(ctx, "teardown", spec);
  for (const sum of summaries) if (!sum || sum.forced !== H) ctx.results.errors.push(`teardown: vigild summary: ${sum?.msg ?? "none"}`);
  const over = Object.fromEntries(Object.entries(stop).map(([sys, ms]) => [sys, ms.map((x) => x - 2000)]));
  ctx.results.scenarios.teardown = { N, hanging: H, overMs: over, vigildForced: summaries.map((s) => s?.forced) };
  ctx.addRow({
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
