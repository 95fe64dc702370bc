// make soak: vigil under a real systemd for SOAK_SECONDS (600 by default)
// with workers that crash, hang, flood their output, and a reload every
// 20 s. At the end: no file descriptor growth in vigild, RSS growth under
// 10 %, no zombie, every worker accounted for, the watchdog never missed.
// It prints the figures. Not part of make test (it runs for minutes).
import { expect } from "chai";
import { SRC, containerForSuite, sleep } from "../system/container.js";

const UNIT = "vigil.service";
const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
// V8 sizes its heap over the first minutes of this churn (heap snapshots of a
// vigild under the same load 50 s and 190 s in differ by 0.5 MB, all compiled
// code, while its RSS still rises): memory growth is measured after that.
const WARMUP_S = Math.min(120, Math.max(5, Math.round(SECONDS / 5)));
const RELOAD_EVERY_S = 20;
const PY = "/usr/bin/python3";
const W = `${SRC}/test/fixtures/workers`;

function config(generation: number): string {
  return `metrics:
  listen: 127.0.0.1:0
log:
  level: info
programs:
  steady:
    command: [${PY}, ${W}/py_ok.py, --handler]
    protocol: on
    instances: 4
    env: { GENERATION: "${generation}" }
  crashy:
    command: [${PY}, ${W}/py_crash.py, --after, "2"]
    protocol: on
    instances: 2
    restart: { backoff_initial: 100ms, backoff_max: 500ms, limit: "100000 in 60s" }
  hangy:
    command: [${PY}, ${W}/py_stop_heartbeat.py, --after, "2"]
    protocol: on
    heartbeat_timeout: 1s
    stack_dump_grace: 100ms
    restart: { backoff_initial: 100ms, backoff_max: 500ms, limit: "100000 in 60s" }
  chatty:
    command: [/bin/sh, -c, "i=0; while true; do i=$((i+1)); echo \\"line $i of a worker that never stops talking\\"; [ $((i % 200)) -eq 0 ] && sleep 0.2; done"]
    protocol: off
`;
}

interface Sample {
  fds: number;
  rssKiB: number;
}

describe(`soak: ${SECONDS} s under a real systemd`, function () {
  this.timeout((SECONDS + 300) * 1000);
  const container = containerForSuite();

  it("keeps vigild's descriptors, memory, children and watchdog steady", async () => {
    const ct = container();
    await ct.sh("mkdir -p /etc/systemd/system/vigil.service.d && printf '[Service]\\nWatchdogSec=2s\\n' > /etc/systemd/system/vigil.service.d/soak.conf && systemctl daemon-reload");
    await ct.writeFile("/etc/vigil/vigil.yaml", config(0));
    const started = await ct.exec(["systemctl", "start", UNIT], { timeoutMs: 120_000 });
    expect(started.code, started.stderr).to.equal(0);
    const main = Number((await ct.show(UNIT, ["MainPID"])).MainPID);
    // RSS swings with the garbage collector (tens of MiB under this churn):
    // the lowest of several readings is the memory vigild really keeps.
    const sample = async (): Promise<Sample> => {
      const rss: number[] = [];
      for (let i = 0; i < 8; i++) {
        rss.push(Number(/^VmRSS:\s+(\d+) kB$/m.exec(await ct.run(["cat", `/proc/${main}/status`]))?.[1]));
        await sleep(1000);
      }
      return { fds: Number(await ct.run(["sh", "-c", `ls /proc/${main}/fd | wc -l`])), rssKiB: Math.min(...rss) };
    };
    await sleep(WARMUP_S * 1000);
    const first = await sample();
    const t0 = Date.now();
    let generation = 0;
    let reloads = 0;
    while (Date.now() - t0 < (SECONDS - WARMUP_S) * 1000) {
      await sleep(RELOAD_EVERY_S * 1000);
      generation++;
      await ct.writeFile("/etc/vigil/vigil.yaml", config(generation));
      const r = await ct.exec(["systemctl", "reload", UNIT], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).to.equal(0);
      reloads++;
    }
    // Let the last reload settle before the final figures.
    await sleep(5000);
    const last = await sample();
    const show = await ct.show(UNIT, ["MainPID", "NRestarts", "ActiveState", "SubState"]);
    const ps = await ct.run(["ps", "-eo", "pid=,ppid=,stat=,args="]);
    const children = ps
      .split("\n")
      .map((l) => /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null && Number(m[2]) === main);
    const zombies = children.filter((m) => m[3]!.startsWith("Z"));
    // The chatty worker fills the journal: read only the lines wanted, filtered in the container.
    const metricsUrl = /metrics on (http:\S+)/.exec((await ct.journalGrep(UNIT, "^metrics on http:", 1)).join("\n"))?.[1];
    const metrics = metricsUrl ? await (await fetch(metricsUrl)).text() : "";
    const value = (re: RegExp): number => [...metrics.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
    const restarts = value(/^vigil_worker_restarts_total\{[^}]*\} (\S+)$/gm);
    const hangs = value(/^vigil_worker_hangs_total\{[^}]*\} (\S+)$/gm);
    const pings = value(/^vigil_watchdog_pings_total (\S+)$/gm);
    const unhealthy = await ct.journalGrep(UNIT, "not pinging the systemd watchdog");
    const rssGrowth = (last.rssKiB - first.rssKiB) / first.rssKiB;

    console.log(`
    soak figures (${SECONDS} s, warm-up ${WARMUP_S} s, ${reloads} reloads):
      vigild fds          ${first.fds} -> ${last.fds}
      vigild RSS          ${(first.rssKiB / 1024).toFixed(1)} MiB -> ${(last.rssKiB / 1024).toFixed(1)} MiB (${(rssGrowth * 100).toFixed(1)} %)
      worker restarts     ${restarts}
      running hangs       ${hangs}
      watchdog pings      ${pings} (NRestarts ${show.NRestarts}, unhealthy ticks ${unhealthy.length})
      live children       ${children.length - zombies.length} (zombies ${zombies.length})
`);

    expect(Number(show.MainPID), "vigild was never restarted").to.equal(main);
    expect(show.NRestarts).to.equal("0");
    expect(show).to.deep.include({ ActiveState: "active", SubState: "running" });
    expect(unhealthy, "the watchdog was never withheld").to.deep.equal([]);
    expect(last.fds, "no descriptor growth").to.be.at.most(first.fds + 2);
    expect(rssGrowth, "RSS growth").to.be.below(0.1);
    expect(zombies.map((z) => z[0])).to.deep.equal([]);
    // Every worker accounted for: 4 steady, 2 crashy, 1 hangy, 1 chatty, give or take the ones restarting.
    expect(children.length).to.be.within(5, 8 + 2);
    expect(restarts).to.be.greaterThan(0);
    expect(hangs).to.be.greaterThan(0);
    expect(pings).to.be.greaterThan(SECONDS * 0.8);

    const stop = await ct.exec(["systemctl", "stop", UNIT], { timeoutMs: 100_000 });
    expect(stop.code).to.equal(0);
    const leftovers = await ct.run(["sh", "-c", "cat /sys/fs/cgroup/system.slice/vigil.service/cgroup.procs 2>/dev/null | wc -l"]);
    expect(Number(leftovers), "nothing left in the unit's cgroup").to.equal(0);
  });
});
