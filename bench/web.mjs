// The web scenarios of the bench: web servers behind one vigil socket under
// Debian's wrk (loopback only, a new connection per request), beside the same
// servers without a supervisor, PM2's cluster mode and supervisord.
//
//   web          throughput of 4 servers on a vigil socket vs the same 4 binding with SO_REUSEPORT
//   webrestart   a rolling restart of 4 web workers under load: requests lost, p99 vs steady p99
//   sysrestart   the supervisor itself restarted under load (vigil: systemctl restart vigil
//                with vigil.socket, in a real systemd container)
//
// Each scenario takes the bench's context: { QUICK, say, addRow, results, peerSkip, withContainer }.
import { join } from "node:path";
import { LineProcess, PATH, REPO, Supervisord, Vigild } from "./lib/runners.mjs";
import { now, round, summary, trackPid } from "./lib/util.mjs";
import {
  HOST,
  NODE_FIXTURE,
  NODE_PORT_APP,
  REUSEPORT,
  GunicornMaster,
  Pm2App,
  ReusePortServers,
  actionWindow,
  answering,
  bumpGeneration,
  firstAnswer,
  freePort,
  gunicorn,
  steadyWindow,
} from "./lib/web.mjs";
import { bootContainer, containerUnavailable } from "./lib/container.mjs";

const SOCKET = (port) => ({ sockets: { http: { listen: `${HOST}:${port}`, backlog: 512 } } });
const GUNICORN_SHUTDOWN = { signal: "SIGTERM", timeout: "10s", handlers_timeout: "5s" };

function pm2WebApp(port) {
  return {
    name: "web",
    script: NODE_PORT_APP,
    exec_mode: "cluster",
    instances: 4,
    autorestart: true,
    kill_timeout: 5000,
    vizion: false,
    automation: false,
    pmx: false,
    out_file: "/dev/null",
    error_file: "/dev/null",
    env: { PORT: String(port) },
  };
}

/** supervisord running 4 gunicorn masters that share the port through SO_REUSEPORT. */
function supervisedGunicorns(port) {
  return new Supervisord([
    {
      name: "web",
      count: 4,
      command: gunicorn({ bind: `${HOST}:${port}`, reusePort: true }).join(" "),
      stopwaitsecs: 10,
      // supervisorctl restart returns once the new master has run 1 s (RUNNING).
      options: { startsecs: 1, directory: REPO },
    },
  ]);
}

async function end(sys) {
  try {
    if (sys instanceof Pm2App) await sys.cleanup();
    else if (sys instanceof ReusePortServers) await sys.stop();
    else {
      if (sys.exitAt === null) await sys.stop(30_000).catch(() => undefined);
      await sys.cleanup?.();
      await sys.kill?.();
    }
  } catch {
    // the scenario's killEverything() follows
  }
}

// ---------------------------------------------------------------- throughput

export async function webThroughput(ctx) {
  const { QUICK, say, addRow, results, peerSkip } = ctx;
  const C = QUICK ? { reps: 3, seconds: 3, warmS: 1, connections: 16 } : { reps: 5, seconds: 10, warmS: 2, connections: 16 };
  const sc = (results.scenarios.web = { ...C, rps: {}, errors: {} });
  const up = {};
  const urls = {};
  try {
    const vport = await freePort();
    up.v = new Vigild({ web: { command: [process.execPath, NODE_FIXTURE], instances: 4, protocol: "on", sockets: ["http"] } }, SOCKET(vport));
    await up.v.allReady(60_000);
    urls.v = `http://${HOST}:${vport}/`;
    const fport = await freePort();
    up.f = new ReusePortServers(fport, [process.execPath, NODE_FIXTURE], 4);
    urls.f = `http://${HOST}:${fport}/`;
    if (!peerSkip.pm2) {
      const pport = await freePort();
      up.p = new Pm2App(pm2WebApp(pport));
      await up.p.startApp();
      urls.p = `http://${HOST}:${pport}/`;
    }
    if (!peerSkip.sup) {
      const sport = await freePort();
      up.s = new Supervisord([
        { name: "web", count: 4, command: `python3 ${REUSEPORT} ${HOST} ${sport} ${process.execPath} ${NODE_FIXTURE}`, stopwaitsecs: 5, options: { directory: REPO } },
      ]);
      urls.s = `http://${HOST}:${sport}/`;
    }
    for (const [k, url] of Object.entries(urls)) {
      await answering(url, 4);
      await steadyWindow(url, C.warmS, { connections: C.connections });
      sc.rps[k] = [];
      sc.errors[k] = [];
    }
    for (const sys of ["s", "p", "v", "f"]) if (up[sys]?.workerPids) for (const p of up[sys].workerPids()) trackPid(p);
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
    for (const sys of Object.values(up)) await end(sys);
  }
  const lost = Object.entries(sc.errors).map(([k, e]) => `${k} ${e.reduce((a, b) => a + b, 0)}`).join(", ");
  addRow({
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

// ---------------------------------------------------------------- rolling restart

export async function webRestart(ctx) {
  const { QUICK, say, addRow, results, peerSkip } = ctx;
  const C = QUICK ? { reps: 3, steadyS: 3, leadMs: 1000, tailMs: 1000 } : { reps: 5, steadyS: 6, leadMs: 1500, tailMs: 1000 };
  const sc = (results.scenarios.webrestart = { ...C, runs: {} });
  const systems = [
    {
      key: "v",
      label: "vigil: 4 gunicorn on a vigil socket, reload (SIGHUP, env changed)",
      async start(port) {
        const v = new Vigild({ web: { command: gunicorn(), instances: 4, sockets: ["http"], shutdown: GUNICORN_SHUTDOWN } }, SOCKET(port));
        await v.allReady(60_000);
        let generation = 0;
        return {
          sys: v,
          restart: async () => {
            const from = v.lines.length;
            bumpGeneration(join(v.dir, "vigil.yaml"), "web", ++generation);
            v.child.kill("SIGHUP");
            const done = await v.waitFor((e) => (e.msg ?? "").startsWith("reload done"), 120_000, "reload done", from);
            if (!/changed web/.test(done.msg)) throw new Error(`vigild: ${done.msg}`);
          },
        };
      },
    },
    {
      key: "p",
      skip: peerSkip.pm2,
      label: "PM2 cluster mode, 4 Node instances, pm2 reload",
      async start(port) {
        const p = new Pm2App(pm2WebApp(port));
        await p.startApp();
        return { sys: p, restart: () => p.reload() };
      },
    },
    {
      key: "s",
      skip: peerSkip.sup,
      label: "supervisord, 4 gunicorn --reuse-port, supervisorctl restart one after another",
      async start(port) {
        const s = supervisedGunicorns(port);
        return {
          sys: s,
          restart: async () => {
            for (let i = 0; i < 4; i++) await s.ctl(["restart", `web:web_${String(i).padStart(4, "0")}`]);
          },
        };
      },
    },
    {
      key: "g",
      skip: QUICK && !ctx.withPeers ? "not run in QUICK mode" : null,
      label: "gunicorn's own HUP, 1 master, 4 workers",
      async start(port) {
        const g = new GunicornMaster(port, 4);
        return { sys: g, restart: () => g.hup() };
      },
    },
    {
      key: "vn",
      skip: QUICK && !ctx.withPeers ? "not run in QUICK mode" : null,
      label: "vigil: 4 Node servers (protocol, ready once listening), reload",
      async start(port) {
        const v = new Vigild({ web: { command: [process.execPath, NODE_FIXTURE], instances: 4, protocol: "on", sockets: ["http"] } }, SOCKET(port));
        await v.allReady(60_000);
        let generation = 0;
        return {
          sys: v,
          restart: async () => {
            const from = v.lines.length;
            bumpGeneration(join(v.dir, "vigil.yaml"), "web", ++generation);
            v.child.kill("SIGHUP");
            await v.waitFor((e) => (e.msg ?? "").startsWith("reload done"), 120_000, "reload done", from);
          },
        };
      },
    },
  ];
  for (const def of systems) {
    if (def.skip) {
      sc.runs[def.key] = def.skip;
      continue;
    }
    const port = await freePort();
    const url = `http://${HOST}:${port}/`;
    let running;
    const runs = (sc.runs[def.key] = { label: def.label, steady: [], restart: [] });
    try {
      running = await def.start(port);
      await answering(url, 4, 60_000);
      await steadyWindow(url, 1);
      for (let rep = 0; rep < C.reps; rep++) {
        const steady = await steadyWindow(url, C.steadyS);
        const restart = await actionWindow(url, running.restart, { leadMs: C.leadMs, tailMs: C.tailMs });
        // Back to all four before the next steady window.
        await answering(url, 4, 60_000);
        delete steady.output;
        const out = restart.output;
        delete restart.output;
        delete restart.actionResult;
        runs.steady.push(steady);
        runs.restart.push(restart);
        if (restart.lost > 0) runs.lastLossOutput = out;
        say(
          `webrestart ${def.key} rep ${rep + 1}: steady p99 ${round(steady.p99Ms, 2)} ms, lost ${steady.lost}; restart (${round(restart.actionMs)} ms) p99 ${round(restart.p99Ms, 2)} ms, lost ${restart.lost} of ${restart.requests}`,
        );
      }
    } finally {
      if (running) await end(running.sys);
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
  addRow({
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
  addRow({
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

// ---------------------------------------------------------------- supervisor restart

export async function supervisorRestart(ctx) {
  const { QUICK, say, addRow, results, peerSkip } = ctx;
  const C = QUICK ? { reps: 3, steadyS: 2, leadMs: 1000, tailMs: 1000 } : { reps: 3, steadyS: 4, leadMs: 1500, tailMs: 1500 };
  const sc = (results.scenarios.sysrestart = { ...C, runs: {} });
  const record = async (key, label, url, restartSystem) => {
    const runs = (sc.runs[key] = { label, steady: [], restart: [] });
    await answering(url, 4, 60_000);
    for (let rep = 0; rep < C.reps; rep++) {
      const steady = await steadyWindow(url, C.steadyS);
      const restart = await actionWindow(
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
      delete steady.output;
      delete restart.output;
      runs.steady.push(steady);
      runs.restart.push(restart);
      say(`sysrestart ${key} rep ${rep + 1}: lost ${restart.lost}, served ${restart.requests} (steady: lost ${steady.lost}), answering again ${round(restart.actionResult.answeringMs)} ms after the restart began`);
      await answering(url, 4, 60_000);
    }
  };

  // PM2 and supervisord on this host.
  if (!peerSkip.pm2) {
    const port = await freePort();
    const p = new Pm2App(pm2WebApp(port));
    try {
      await p.startApp();
      await record("p", "PM2: pm2 kill, pm2 resurrect", `http://${HOST}:${port}/`, () => p.killResurrect());
    } finally {
      await end(p);
    }
  } else sc.runs.p = peerSkip.pm2;
  if (!peerSkip.sup) {
    const port = await freePort();
    const first = supervisedGunicorns(port);
    let current = first;
    try {
      await record("s", "supervisord stopped and started again (4 gunicorn --reuse-port)", `http://${HOST}:${port}/`, async () => {
        await current.stop(60_000);
        // The same configuration, a new supervisord: what systemctl restart supervisor does.
        const next = new LineProcess("supervisord", ["-c", first.conf, "-n"], { cwd: first.dir, env: { PATH } });
        next.name = "supervisord";
        current = next;
      });
    } finally {
      await end(current);
      await first.cleanup();
    }
  } else sc.runs.s = peerSkip.sup;

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
  addRow({
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
