// monitoring/vigil.rules.yml: valid for Prometheus, unit-tested with
// promtool, and written for the person who gets paged.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { REPO } from "../../helpers/repo.js";

const MONITORING = join(REPO, "monitoring");

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface AlertTest {
  eval_time: string;
  alertname: string;
  exp_alerts?: Array<{ exp_labels?: Record<string, string>; exp_annotations?: Record<string, string> }>;
}

function promtool(args: string[], cwd: string): { status: number | null; output: string } {
  const r = spawnSync("promtool", args, { cwd, encoding: "utf8", timeout: 60_000 });
  if (r.error) throw new Error(`promtool ${args.join(" ")}: ${r.error.message} (Debian package prometheus)`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

function alerts(): Rule[] {
  const doc = parse(readFileSync(join(MONITORING, "vigil.rules.yml"), "utf8")) as { groups: Array<{ rules: Rule[] }> };
  return doc.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);
}

describe("monitoring: alerting rules", function () {
  this.timeout(60_000);

  it("`promtool check rules` accepts them", () => {
    const { status, output } = promtool(["check", "rules", "monitoring/vigil.rules.yml"], REPO);
    expect(status, output).to.equal(0);
    expect(output).to.match(/SUCCESS: \d+ rules found/);
  });

  it("`promtool test rules` passes their unit tests", () => {
    const { status, output } = promtool(["test", "rules", "vigil.rules.test.yml"], MONITORING);
    expect(status, output).to.equal(0);
    expect(output).to.contain("SUCCESS");
  });

  it("cover teardown hangs, forced stops, FAILED programs, restart storms, running hangs, the watchdog, protocol errors and unkillable workers", () => {
    const exprs = alerts().map((r) => String(r.expr));
    const covers = (re: RegExp): boolean => exprs.some((e) => re.test(e));
    expect(covers(/vigil_worker_hangs_total\{phase="teardown"\}/), "teardown hangs").to.equal(true);
    expect(covers(/vigil_worker_hangs_total\{phase="running"\}/), "running hangs").to.equal(true);
    expect(covers(/vigil_worker_shutdown_seconds_count\{outcome="forced"\}/), "forced stops").to.equal(true);
    expect(covers(/vigil_workers\{state="failed"\} > 0/), "FAILED programs").to.equal(true);
    expect(covers(/rate\(vigil_worker_restarts_total/), "restart storms").to.equal(true);
    expect(covers(/rate\(vigil_watchdog_pings_total\[2m\]\) == 0/), "watchdog pings stopped").to.equal(true);
    expect(covers(/^up\{job="vigil"\} == 0$/), "vigild down").to.equal(true);
    expect(covers(/^absent\(up\{job="vigil"\}\)$/), "no vigil target").to.equal(true);
    expect(covers(/vigil_protocol_errors_total/), "protocol errors").to.equal(true);
    expect(covers(/increase\(vigil_worker_unkillable_total\[15m\]\)/), "workers SIGKILL cannot end").to.equal(true);
    expect(covers(/vigil_last_shutdown_workers\{outcome="unkillable"\} > 0/), "unkillable workers at the last stop").to.equal(true);
  });

  it("each alert has a for:, a severity, and a summary and description a person can act on", () => {
    const problems: string[] = [];
    for (const r of alerts()) {
      if (!/^\d+[smh]$/.test(r.for ?? "")) problems.push(`${r.alert}: for: ${r.for}`);
      if (!["critical", "warning", "info"].includes(r.labels?.severity ?? "")) problems.push(`${r.alert}: severity ${r.labels?.severity}`);
      const summary = r.annotations?.summary ?? "";
      const description = r.annotations?.description ?? "";
      if (summary.length < 20 || summary.length > 120) problems.push(`${r.alert}: summary "${summary}"`);
      if (description.length < 100) problems.push(`${r.alert}: description too short`);
      // Names the thing it is about (a program or a vigild instance).
      if (!/\$labels\.(program|instance)|vigil target/.test(summary)) problems.push(`${r.alert}: summary names no program or instance`);
    }
    expect(problems).to.deep.equal([]);
  });

  it("each alert has a unit test in which it fires with its labels and annotations, and one in which it stays quiet", () => {
    const doc = parse(readFileSync(join(MONITORING, "vigil.rules.test.yml"), "utf8")) as {
      rule_files: string[];
      tests: Array<{ alert_rule_test?: AlertTest[] }>;
    };
    expect(doc.rule_files).to.deep.equal(["vigil.rules.yml"]);
    const cases = doc.tests.flatMap((t) => t.alert_rule_test ?? []);
    const problems: string[] = [];
    for (const { alert } of alerts()) {
      const mine = cases.filter((c) => c.alertname === alert);
      const firing = mine.filter((c) => (c.exp_alerts ?? []).length > 0);
      if (firing.length === 0) problems.push(`${alert}: never fires in a test`);
      if (!mine.some((c) => (c.exp_alerts ?? []).length === 0)) problems.push(`${alert}: never tested quiet`);
      for (const c of firing) {
        for (const a of c.exp_alerts!) {
          if (!a.exp_labels?.severity) problems.push(`${alert} at ${c.eval_time}: no expected severity`);
          if (!a.exp_annotations?.summary || !a.exp_annotations.description) problems.push(`${alert} at ${c.eval_time}: no expected annotations`);
        }
      }
    }
    expect(problems).to.deep.equal([]);
  });
});
