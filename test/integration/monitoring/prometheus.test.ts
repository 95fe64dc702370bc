// End to end: a real vigild with real workers, scraped every second by
// Debian's real Prometheus server, which also evaluates monitoring/vigil.rules.yml.
// Everything is asked of Prometheus over its HTTP API, as a dashboard or
// Alertmanager would. Loopback only; every process stopped by pid.
import { expect } from "chai";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { Vigild, py, stopAll, type LogEntry } from "../../helpers/vigild.js";
import { Prometheus, RULES, dashboardQueries, stopAllPrometheus } from "../../helpers/prometheus.js";

const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);

const tempDirs: string[] = [];


/** A program whose worker hangs in interpreter teardown (mod_wsgi's case) and is killed 2 s into its stop. */
const TEARDOWN_HANG = {
  command: py("py_teardown_hang.py"),
  protocol: "on",
  shutdown: { teardown: "destroy", teardown_hang_after: "500ms", timeout: "2s" },
};

/** Rewrites vigild's configuration with or without the program tear, reloads, and waits for the reload to finish. */
async function reloadWithTear(v: Vigild, present: boolean): Promise<void> {
  const config = parse(readFileSync(v.configPath, "utf8")) as { programs: Record<string, unknown> };
  if (present) config.programs.tear = TEARDOWN_HANG;
  else delete config.programs.tear;
  writeFileSync(v.configPath, stringify(config));
  const done = v.logs.filter(isMsg(/^reload done/)).length;
  v.signal("SIGHUP");
  await v.waitForCount(isMsg(/^reload done/), done + 1, 15_000, "reloads done");
}

/**
 * vigild runs web and tear; a reload that removes tear stops it, phased, while
 * Prometheus scrapes: its worker hangs in teardown and is killed at the stop
 * timeout. `rounds` > 1 adds tear back and removes it again.
 */
async function reloadAwayTeardownHang(rounds = 1): Promise<{ v: Vigild; prom: Prometheus }> {
  const v = new Vigild(
    { programs: { web: { command: py("py_ok.py"), protocol: "on" }, tear: TEARDOWN_HANG } },
    { env: { WATCHDOG_USEC: "1000000" } },
  );
  const prom = await Prometheus.start(await v.metricsUrl());
  for (let round = 1; round <= rounds; round++) {
    if (round > 1) await reloadWithTear(v, true);
    await prom.waitForValue('vigil_workers{program="tear",state="running"}', (n) => n === 1);
    await reloadWithTear(v, false);
    await v.waitForCount(isMsg(/^tear\/0.* hung in phase teardown/), round, 10_000, "teardown hangs");
    await prom.waitForValue('vigil_worker_shutdown_seconds_count{program="tear",outcome="forced"}', (n) => n === round);
  }
  return { v, prom };
}

describe("monitoring: a real Prometheus scraping a real vigild", function () {
  this.timeout(60_000);

  afterEach(async () => {
    await stopAllPrometheus();
    await stopAll();
    for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("sees workers by state, a crash restart, a running hang and watchdog pings", async () => {
    const v = new Vigild(
      {
        programs: {
          web: { command: py("py_ok.py"), protocol: "on", instances: 2 },
          crashy: { command: py("py_crash.py", "--after", "0.5"), protocol: "on", restart: { policy: "always", backoff_initial: "100ms", limit: "50 in 60s" } },
          wedged: { command: py("py_stop_heartbeat.py", "--after", "0.5"), protocol: "on", heartbeat_timeout: "1s", stack_dump_grace: "250ms" },
        },
      },
      { env: { WATCHDOG_USEC: "1000000" } },
    );
    const prom = await Prometheus.start(await v.metricsUrl());
    expect(await prom.waitForValue('up{job="vigil"}', (n) => n === 1)).to.equal(1);
    expect(await prom.waitForValue('vigil_workers{program="web",state="running"}', (n) => n === 2)).to.equal(2);
    expect(await prom.waitForValue('vigil_worker_restarts_total{program="crashy",reason="crash"}', (n) => n > 0)).to.be.above(0);
    expect(await prom.waitForValue('vigil_worker_hangs_total{program="wedged",phase="running"}', (n) => n >= 1)).to.be.at.least(1);
    expect(await prom.waitForValue('vigil_worker_restarts_total{program="wedged",reason="hang"}', (n) => n >= 1)).to.be.at.least(1);
    expect(await prom.waitForValue("rate(vigil_watchdog_pings_total[5s])", (n) => n > 0)).to.be.above(0);
    expect(await prom.waitForValue("vigil_event_loop_lag_seconds", (n) => n >= 0 && n < 1)).to.be.below(1);
  });

  it("fires VigilProgramFailed for a crash-looping program, and evaluates every rule without error", async () => {
    const v = new Vigild({
      programs: {
        web: { command: py("py_ok.py"), protocol: "on" },
        // Ready first, then crashes: a program FAILED before vigild is ready fails vigild's start instead.
        crashy: { command: py("py_crash.py", "--after", "0.5"), protocol: "on", restart: { policy: "always", backoff_initial: "100ms", limit: "2 in 60s" } },
      },
    });
    const prom = await Prometheus.start(await v.metricsUrl());
    await v.waitFor(isMsg(/program crashy FAILED/), 15_000);
    expect(await prom.waitForValue('vigil_workers{program="crashy",state="failed"}', (n) => n === 1)).to.equal(1);
    // for: 1m, so pending first; pending is what Alertmanager's sender would wait on.
    const alert = await prom.waitUntil("VigilProgramFailed for crashy", async () =>
      (await prom.alerts()).find((a) => a.labels.alertname === "VigilProgramFailed" && a.labels.program === "crashy"),
    );
    expect(["pending", "firing"]).to.include(alert.state);
    expect(alert.labels).to.include({ severity: "critical", job: "vigil", state: "failed" });
    expect(alert.annotations.summary).to.match(/^vigil program crashy is FAILED on 127\.0\.0\.1:\d+$/);
    expect(alert.annotations.description).to.contain("vigilctl restart crashy");
    // The healthy program raises nothing.
    expect((await prom.alerts()).filter((a) => a.labels.program === "web")).to.deep.equal([]);
    // Every rule has been evaluated on real series, without an error.
    const rules = await prom.waitUntil("every rule evaluated", async () => {
      const all = await prom.rules();
      return all.every((r) => !r.lastEvaluation.startsWith("0001-")) ? all : undefined;
    });
    const expected = (parse(readFileSync(RULES, "utf8")) as { groups: Array<{ rules: unknown[] }> }).groups.flatMap((g) => g.rules).length;
    expect(rules).to.have.length(expected);
    expect(rules.filter((r) => r.health !== "ok").map((r) => `${r.name}: ${r.health} ${r.lastError ?? ""}`)).to.deep.equal([]);
  });

  it("sees a forced stop after a teardown hang when a reload removes a program", async () => {
    const { prom } = await reloadAwayTeardownHang();
    const forced = 'vigil_worker_shutdown_seconds_count{program="tear",outcome="forced"}';
    expect(await prom.waitForValue(forced, (n) => n === 1)).to.equal(1);
    expect(await prom.waitForValue('vigil_worker_hangs_total{program="tear",phase="teardown"}', (n) => n === 1)).to.equal(1);
    // Killed at shutdown.timeout (2 s): the histogram puts it in the 2.5 s bucket.
    const sum = await prom.waitForValue('vigil_worker_shutdown_seconds_sum{program="tear",outcome="forced"}', (n) => n > 0);
    expect(sum).to.be.within(2, 2.5);
    expect(await prom.waitForValue('vigil_worker_shutdown_seconds_bucket{program="tear",outcome="forced",le="1"}', () => true)).to.equal(0);
    expect(await prom.waitForValue('vigil_worker_shutdown_seconds_bucket{program="tear",outcome="forced",le="2.5"}', () => true)).to.equal(1);
    expect(await prom.waitForValue('vigil_worker_teardown_seconds_count{program="tear"}', (n) => n === 1)).to.equal(1);
    // The program that stayed is untouched.
    expect(await prom.waitForValue('vigil_workers{program="web",state="running"}', () => true)).to.equal(1);
  });

  it("runs every dashboard query without error, and the main panels have data", async () => {
    // Two forced stops: rate() and so the quantiles see only increases of a
    // series, and vigild's histogram series appear at their first observation.
    const { prom } = await reloadAwayTeardownHang(2);
    const empty: string[] = [];
    for (const { title, expr } of dashboardQueries()) {
      const result = await prom.query(expr); // throws on a PromQL error
      if (result.length === 0) empty.push(title);
    }
    // Panels of things that did not happen here (crashes, protocol errors, a
    // previous stop of vigild: without a report its gauges are absent) may be
    // empty; these may not.
    const mustHaveData = [
      "Running workers",
      "FAILED worker slots",
      "Workers by state",
      "Stop duration p50 / p99 by outcome",
      "Teardown duration p50 / p99",
      "Hangs in the time range by phase",
      "Stops in the time range by outcome",
      "Watchdog pings (per minute)",
      "Event loop lag",
      "vigild resident memory",
      "vigild CPU",
      "vigild uptime and open files",
    ];
    expect(mustHaveData.filter((t) => empty.includes(t))).to.deep.equal([]);
    const p99 = await prom.query(
      'histogram_quantile(0.99, sum by (le, outcome) (rate(vigil_worker_shutdown_seconds_bucket{program="tear"}[1m])))',
    );
    // Outcomes that never happened exist at 0 (so increase() sees their first event): their quantile is NaN.
    const seen = p99.filter((s) => !Number.isNaN(Number(s.value[1])));
    expect(seen.map((s) => s.metric.outcome)).to.deep.equal(["forced"]);
    expect(Number(seen[0]!.value[1])).to.be.within(1, 2.5);
  });

  it("sees the forced stop of the previous vigild, from its last-shutdown report, after a restart", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "vigil-state-"));
    tempDirs.push(stateDir);
    const first = new Vigild({ state_dir: stateDir, programs: { web: { command: py("py_ok.py"), protocol: "on" }, tear: TEARDOWN_HANG } });
    await first.waitFor(isMsg(/^all 2 workers ready/), 15_000);
    first.signal("SIGTERM");
    expect((await first.waitExit(15_000)).code).to.equal(0);
    const summary = first.logs.find(isMsg(/^stopped 2 workers/));
    expect(summary?.msg).to.match(/1 forced/);

    const second = new Vigild({ state_dir: stateDir, programs: { web: { command: py("py_ok.py"), protocol: "on" } } });
    const prom = await Prometheus.start(await second.metricsUrl());
    expect(await prom.waitForValue('vigil_last_shutdown_workers{outcome="forced"}', () => true)).to.equal(1);
    expect(await prom.waitForValue('vigil_last_shutdown_workers{outcome="clean"}', () => true)).to.equal(1);
    expect(await prom.waitForValue("vigil_last_shutdown_seconds", () => true)).to.be.within(2, 5);
    const alert = await prom.waitUntil("VigilLastShutdownForced", async () =>
      (await prom.alerts()).find((a) => a.labels.alertname === "VigilLastShutdownForced"),
    );
    expect(["pending", "firing"]).to.include(alert.state);
    expect(alert.annotations.description).to.match(/^When vigild last stopped \(before its current start\), 1 worker\(s\)/);
  });
});
