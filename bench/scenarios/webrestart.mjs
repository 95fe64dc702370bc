// A rolling restart of 4 web workers under wrk: requests lost, and p99 during
// the restart against the same system's steady p99.
import { HOST } from "../lib/proc.mjs";
import { GunicornMaster, RUNNERS } from "../lib/runners.mjs";
import { round, summary } from "../lib/util.mjs";
import { actionWindow, answering, freePort, steadyWindow } from "../lib/web.mjs";

export default async function webRestart(ctx) {
  const { QUICK, say, results, peerSkip } = ctx;
  const C = QUICK ? { reps: 3, steadyS: 3, leadMs: 1000, tailMs: 1000 } : { reps: 5, steadyS: 6, leadMs: 1500, tailMs: 1000 };
  const sc = (results.scenarios.webrestart = { ...C, runs: {} });
  const others = QUICK && !ctx.withPeers ? "not run in QUICK mode" : null;
  const systems = [
    { key: "v", label: "vigil: 4 gunicorn on a vigil socket, reload (SIGHUP, env changed)", up: (port) => RUNNERS.v.web(port, "gunicorn") },
    { key: "p", skip: peerSkip.pm2, label: "PM2 cluster mode, 4 Node instances, pm2 reload", up: (port) => RUNNERS.p.web(port) },
    { key: "s", skip: peerSkip.sup, label: "supervisord, 4 gunicorn --reuse-port, supervisorctl restart one after another", up: (port) => RUNNERS.s.web(port, "gunicorn") },
    { key: "g", skip: others, label: "gunicorn's own HUP, 1 master, 4 workers", up: (port) => GunicornMaster.web(port) },
    { key: "vn", skip: others, label: "vigil: 4 Node servers (protocol, ready once listening), reload", up: (port) => RUNNERS.v.web(port, "node") },
  ];
  for (const def of systems) {
    if (def.skip) {
      sc.runs[def.key] = def.skip;
      continue;
    }
    const port = await freePort();
    const url = `http://${HOST}:${port}/`;
    let sys;
    const runs = (sc.runs[def.key] = { label: def.label, steady: [], restart: [] });
    try {
      sys = await def.up(port);
      await answering(url, 4, 60_000);
      await steadyWindow(url, 1);
      for (let rep = 0; rep < C.reps; rep++) {
        const { output: _s, ...steady } = await steadyWindow(url, C.steadyS);
        const { output, actionResult: _a, ...restart } = await actionWindow(url, () => sys.restartWorkers(), { leadMs: C.leadMs, tailMs: C.tailMs });
        // Back to all four before the next steady window.
        await answering(url, 4, 60_000);
        runs.steady.push(steady);
        runs.restart.push(restart);
        if (restart.lost > 0) runs.lastLossOutput = output;
        say(
          `webrestart ${def.key} rep ${rep + 1}: steady p99 ${round(steady.p99Ms, 2)} ms, lost ${steady.lost}; restart (${round(restart.actionMs)} ms) p99 ${round(restart.p99Ms, 2)} ms, lost ${restart.lost} of ${restart.requests}`,
        );
      }
    } finally {
      await sys?.end().catch(() => undefined);
    }
  }
  const get = (k, phase, f) => (Array.isArray(sc.runs[k]?.[phase]) ? sc.runs[k][phase].map((r) => r[f]) : sc.runs[k]);
  const lostText = (k) => (Array.isArray(sc.runs[k]?.restart) ? `${get(k, "restart", "lost").join("+")} of ${get(k, "restart", "requests").reduce((a, b) => a + b, 0)}` : sc.runs[k]);
  const p99Text = (k) => {
    if (!Array.isArray(sc.runs[k]?.restart)) return sc.runs[k];
    const r = summary(get(k, "restart", "p99Ms")).median;
    const s = summary(get(k, "steady", "p99Ms")).median;
    return `${round(r, 2)} vs steady ${round(s, 2)} ms (x ${round(r / s, 2)})`;
  };
  const actionText = (k) => (Array.isArray(sc.runs[k]?.restart) ? `${round(summary(get(k, "restart", "actionMs")).median)} ms` : "-");
  ctx.addRow({
    scenario: "rolling restart of 4 web workers under wrk",
    figure: "requests lost (errors + non-2xx) per restart",
    stat: "max",
    vigil: get("v", "restart", "lost"),
    baseline: get("v", "steady", "lost"),
    target: { max: 0, belowPeers: true },
    pm2: get("p", "restart", "lost"),
    sup: get("s", "restart", "lost"),
    others: { "gunicorn HUP": get("g", "restart", "lost"), "vigil (Node)": get("vn", "restart", "lost") },
    digits: 0,
    note: `largest over ${C.reps} restarts (each: ${C.leadMs} ms of load, the restart, ${C.tailMs} ms more; wrk -t2 -c4, Connection: close); baseline: vigil's steady windows. Lost of all requests: vigil ${lostText("v")}; PM2 ${lostText("p")}; supervisord ${lostText("s")}; gunicorn HUP ${lostText("g")}; vigil with Node servers ${lostText("vn")}. Restart took (median): vigil ${actionText("v")}, PM2 ${actionText("p")}, supervisord ${actionText("s")}, gunicorn ${actionText("g")}, vigil (Node) ${actionText("vn")}. vigil restarts by a reload with a changed env (SIGHUP), the same rolling replacement as vigilctl restart, which needs D-Bus`,
  });
  ctx.addRow({
    scenario: "rolling restart of 4 web workers under wrk",
    figure: "p99 latency during the restart, ms",
    vigil: get("v", "restart", "p99Ms"),
    baseline: get("v", "steady", "p99Ms"),
    target: { ratio: 1.5 },
    pm2: get("p", "restart", "p99Ms"),
    sup: get("s", "restart", "p99Ms"),
    others: { "gunicorn HUP": get("g", "restart", "p99Ms"), "vigil (Node)": get("vn", "restart", "p99Ms") },
    digits: 2,
    note: `wrk's p99 over the restart window; baseline: the same system's p99 over ${C.steadyS} s steady windows just before each restart. Each against its own steady p99 (median): vigil ${p99Text("v")}; PM2 ${p99Text("p")}; supervisord ${p99Text("s")}; gunicorn HUP ${p99Text("g")}; vigil (Node) ${p99Text("vn")}`,
  });
}
