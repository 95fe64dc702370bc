// Throughput of 4 Node web servers on a vigil socket vs the same 4 each binding
// its own SO_REUSEPORT socket with no supervisor, PM2's cluster mode and
// supervisord, all up side by side, loaded one at a time (wrk, a new connection per request).
import { HOST } from "../lib/proc.mjs";
import { RUNNERS } from "../lib/runners.mjs";
import { round, trackPid } from "../lib/util.mjs";
import { answering, freePort, steadyWindow } from "../lib/web.mjs";

export default async function webThroughput(ctx) {
  const { QUICK, say, results, peerSkip } = ctx;
  const C = QUICK ? { reps: 3, seconds: 3, warmS: 1, connections: 16 } : { reps: 5, seconds: 10, warmS: 2, connections: 16 };
  const sc = (results.scenarios.web = { ...C, rps: {}, errors: {} });
  const up = {};
  const urls = {};
  try {
    for (const sys of ["v", "f", "p", "s"].filter((s) => ctx.order(0).includes(s))) {
      const port = await freePort();
      up[sys] = await RUNNERS[sys].web(port, "node");
      urls[sys] = `http://${HOST}:${port}/`;
    }
    for (const [sys, url] of Object.entries(urls)) {
      await answering(url, 4);
      await steadyWindow(url, C.warmS, { connections: C.connections });
      sc.rps[sys] = [];
      sc.errors[sys] = [];
      for (const p of up[sys].workerPids?.() ?? []) trackPid(p);
    }
    const keys = Object.keys(urls);
    for (let rep = 0; rep < C.reps; rep++) {
      // Rotate the order so a slow moment of the machine does not always hit the same system.
      const order = [...keys.slice(rep % keys.length), ...keys.slice(0, rep % keys.length)];
      for (const k of order) {
        const r = await steadyWindow(urls[k], C.seconds, { connections: C.connections });
        sc.rps[k].push(r.rps);
        sc.errors[k].push(r.lost);
      }
      say(`web rep ${rep + 1}: requests/s ${order.map((k) => `${k} ${round(sc.rps[k][rep])}`).join(", ")}`);
    }
  } finally {
    for (const r of Object.values(up)) await r.end().catch(() => undefined);
  }
  const lost = Object.entries(sc.errors).map(([k, e]) => `${k} ${e.reduce((a, b) => a + b, 0)}`).join(", ");
  ctx.addRow({
    scenario: "web: 4 Node http servers, one socket",
    figure: "requests/s (wrk, new connection each)",
    vigil: sc.rps.v,
    baseline: sc.rps.f,
    target: { minRatio: 0.98 },
    pm2: sc.rps.p ?? peerSkip.pm2,
    sup: sc.rps.s ?? peerSkip.sup,
    digits: 0,
    note: `test/fixtures/web/node_http.mjs x4; vigil: one vigil socket (one accept queue, fd 3); floor: each server binds its own SO_REUSEPORT socket (bench/workers/reuseport.py) and no supervisor runs; PM2: cluster mode (its primary accepts and hands each connection over); supervisord: the floor's servers under supervisord. wrk -t2 -c${C.connections}, ${C.seconds} s per run, systems in rotating order; errors + non-2xx over all runs: ${lost}`,
  });
}
