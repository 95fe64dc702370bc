// The supervisor itself restarted under wrk: requests lost. vigil runs under a
// real systemd (the system tests' container) with vigil.socket, and without it.
import { HOST, REPO } from "../lib/proc.mjs";
import { RUNNERS } from "../lib/runners.mjs";
import { GUNICORN_SHUTDOWN, gunicorn } from "../lib/runners/gunicorn.mjs";
import { bootContainer, containerUnavailable } from "../lib/container.mjs";
import { now, round, summary } from "../lib/util.mjs";
import { actionWindow, answering, firstAnswer, freePort, steadyWindow } from "../lib/web.mjs";

export default async function supervisorRestart(ctx) {
  const { QUICK, say, results, peerSkip } = ctx;
  const C = QUICK ? { reps: 3, steadyS: 2, leadMs: 1000, tailMs: 1000 } : { reps: 3, steadyS: 4, leadMs: 1500, tailMs: 1500 };
  const sc = (results.scenarios.sysrestart = { ...C, runs: {} });
  const record = async (key, label, url, restartSystem) => {
    const runs = (sc.runs[key] = { label, steady: [], restart: [] });
    await answering(url, 4, 60_000);
    for (let rep = 0; rep < C.reps; rep++) {
      const { output: _s, ...steady } = await steadyWindow(url, C.steadyS);
      const { output: _r, ...restart } = await actionWindow(
        url,
        async () => {
          const t0 = now();
          await restartSystem();
          // Serving again: the first answer after the command returned.
          const back = await firstAnswer(url, 60_000);
          return { commandMs: now() - t0, answeringMs: back - t0 };
        },
        { leadMs: C.leadMs, tailMs: C.tailMs },
      );
      runs.steady.push(steady);
      runs.restart.push(restart);
      say(`sysrestart ${key} rep ${rep + 1}: lost ${restart.lost}, served ${restart.requests} (steady: lost ${steady.lost}), answering again ${round(restart.actionResult.answeringMs)} ms after the restart began`);
      await answering(url, 4, 60_000);
    }
  };

  // PM2 (4 Node instances, cluster mode) and supervisord (4 gunicorn --reuse-port) on this host.
  for (const [key, skip, app, label] of [
    ["p", peerSkip.pm2, "node", "PM2: pm2 kill, pm2 resurrect"],
    ["s", peerSkip.sup, "gunicorn", "supervisord stopped and started again (4 gunicorn --reuse-port)"],
  ]) {
    if (skip) {
      sc.runs[key] = skip;
      continue;
    }
    const port = await freePort();
    let sys;
    try {
      sys = await RUNNERS[key].web(port, app);
      await record(key, label, `http://${HOST}:${port}/`, () => sys.restartSupervisor());
    } finally {
      await sys?.end().catch(() => undefined);
    }
  }

  // vigil under a real systemd: without, then with vigil.socket.
  const why = ctx.withContainer ? await containerUnavailable() : "not run in QUICK mode (BENCH_CONTAINER=1 runs it)";
  if (why) {
    sc.runs.v = sc.runs.vn = why;
    say(`sysrestart: vigil under systemd skipped: ${why}`);
  } else {
    const c = await bootContainer(say);
    try {
      const port = await freePort();
      const url = `http://${HOST}:${port}/`;
      await c.writeFile(
        "/etc/vigil/vigil.yaml",
        JSON.stringify({
          metrics: { listen: "127.0.0.1:0" },
          sockets: { http: { listen: `${HOST}:${port}`, backlog: 512 } },
          programs: { web: { command: gunicorn().map((a) => a.replace(REPO, "/src")), instances: 4, sockets: ["http"], shutdown: GUNICORN_SHUTDOWN } },
        }),
      );
      await c.run(["sed", "-i", `s|^ListenStream=.*$|ListenStream=${HOST}:${port}|`, "/etc/systemd/system/vigil.socket"]);
      // The unit allows 3 starts a minute; the bench restarts it more often than that.
      await c.writeFile("/etc/systemd/system/vigil.service.d/bench.conf", "[Unit]\nStartLimitIntervalSec=0\n");
      await c.run(["systemctl", "daemon-reload"]);
      const restartVigil = async () => {
        const r = await c.exec(["systemctl", "restart", "vigil.service"], { timeoutMs: 120_000 });
        if (r.code !== 0) throw new Error(`systemctl restart vigil: ${r.stderr}`);
      };
      await c.run(["systemctl", "start", "vigil.service"], { timeoutMs: 120_000 });
      await record("vn", "vigil under systemd, no socket unit (vigild binds the port)", url, restartVigil);
      await c.run(["systemctl", "stop", "vigil.service"], { timeoutMs: 120_000 });
      await c.run(["systemctl", "start", "vigil.socket"]);
      await c.run(["systemctl", "start", "vigil.service"], { timeoutMs: 120_000 });
      const journal = await c.run(["journalctl", "-u", "vigil.service", "--no-pager", "-q", "-o", "cat"]);
      if (!/socket http taken from systemd/.test(journal)) throw new Error("vigild did not take the socket from systemd");
      await record("v", "vigil under systemd with vigil.socket", url, restartVigil);
      await c.exec(["systemctl", "stop", "vigil.service", "vigil.socket"], { timeoutMs: 120_000 });
    } finally {
      await c.stop();
    }
  }

  const get = (k, phase, f) => (Array.isArray(sc.runs[k]?.[phase]) ? sc.runs[k][phase].map((r) => r[f]) : sc.runs[k]);
  const back = (k) => (Array.isArray(sc.runs[k]?.restart) ? `${round(summary(sc.runs[k].restart.map((r) => r.actionResult.answeringMs)).median)} ms` : "-");
  ctx.addRow({
    scenario: "supervisor restarted under wrk (4 web workers)",
    figure: "requests lost (errors + non-2xx) per restart",
    stat: "max",
    vigil: get("v", "restart", "lost"),
    baseline: get("v", "steady", "lost"),
    target: { max: 0 },
    pm2: get("p", "restart", "lost"),
    sup: get("s", "restart", "lost"),
    others: { "vigil, no vigil.socket": get("vn", "restart", "lost") },
    digits: 0,
    note: `largest over ${C.reps} restarts; vigil: systemctl restart vigil in a systemd container sharing the host's network (wrk on the host, 127.0.0.1), 4 gunicorn instances on vigil.socket; PM2: pm2 save, pm2 kill, pm2 resurrect (4 Node instances, cluster mode); supervisord: stopped and started again with 4 gunicorn --reuse-port. A refused connection is retried at once by wrk, so a loss counts attempts, not users. Serving again after (median): vigil ${back("v")}, without vigil.socket ${back("vn")}, PM2 ${back("p")}, supervisord ${back("s")}`,
  });
}
