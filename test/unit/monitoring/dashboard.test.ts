// monitoring/grafana-dashboard.json: importable as is, with the data source
// and the program as template variables. (Which metrics its queries may use
// is checked in contract.test.ts; that they run on a real Prometheus, in
// prometheus.test.ts.)
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../../helpers/repo.js";

const DASHBOARD = join(REPO, "monitoring/grafana-dashboard.json");

interface Datasource {
  type?: string;
  uid?: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: Datasource;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Array<{ expr?: string; refId?: string; datasource?: Datasource; legendFormat?: string }>;
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: unknown;
  datasource?: Datasource;
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string;
}
interface Dashboard {
  title: string;
  uid: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
}

function load(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD, "utf8")) as Dashboard;
}

function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

const PROMETHEUS = { type: "prometheus", uid: "${DS_PROMETHEUS}" };

describe("monitoring: Grafana dashboard", () => {
  it("is JSON with a title, a stable uid and a schema version", () => {
    const d = load();
    expect(d.title).to.equal("vigil");
    expect(d.uid).to.match(/^[a-z0-9-]{1,40}$/);
    expect(d.schemaVersion).to.be.a("number");
  });

  it("takes its data source from the template variable ${DS_PROMETHEUS}, everywhere", () => {
    const d = load();
    const ds = d.templating.list.find((v) => v.name === "DS_PROMETHEUS");
    expect(ds?.type).to.equal("datasource");
    expect(ds?.query).to.equal("prometheus");
    const wrong: string[] = [];
    for (const p of allPanels(d)) {
      if (p.type === "row") continue;
      if (JSON.stringify(p.datasource) !== JSON.stringify(PROMETHEUS)) wrong.push(`panel "${p.title}"`);
      for (const t of p.targets ?? []) if (JSON.stringify(t.datasource) !== JSON.stringify(PROMETHEUS)) wrong.push(`panel "${p.title}" ${t.refId}`);
    }
    for (const v of d.templating.list.filter((x) => x.type === "query")) {
      if (JSON.stringify(v.datasource) !== JSON.stringify(PROMETHEUS)) wrong.push(`variable ${v.name}`);
    }
    expect(wrong).to.deep.equal([]);
    // No data source of the author's own Grafana baked in.
    expect(readFileSync(DASHBOARD, "utf8")).not.to.match(/"uid":\s*"(?!\$\{DS_PROMETHEUS\}|-- Grafana --|vigil-)[^"]*"/);
  });

  it("has a program variable (multi-valued, with All) that every per-program query filters on", () => {
    const d = load();
    const program = d.templating.list.find((v) => v.name === "program");
    expect(program?.type).to.equal("query");
    expect(JSON.stringify(program?.query)).to.contain("label_values(vigil_workers");
    expect(program?.multi).to.equal(true);
    expect(program?.includeAll).to.equal(true);
    expect(program?.allValue).to.equal(".*");
    const perProgram = /vigil_(workers|worker_\w+|protocol_errors_total)\{/;
    const unfiltered = allPanels(d)
      .flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr ?? "" })))
      .filter(({ expr }) => perProgram.test(expr))
      .filter(({ expr }) => [...expr.matchAll(/vigil_(?:workers|worker_\w+|protocol_errors_total)\{([^}]*)\}/g)].some((m) => !m[1]!.includes('program=~"$program"')))
      .map(({ title }) => title);
    expect(unfiltered).to.deep.equal([]);
  });

  it("shows the figures asked for: workers, restarts, hangs, stop and teardown durations, last stop, watchdog, loop lag, protocol errors, RSS and CPU", () => {
    const exprs = allPanels(load()).flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ""));
    const has = (re: RegExp): boolean => exprs.some((e) => re.test(e));
    expect(has(/sum by \(state\) \(vigil_workers\{/), "workers by state").to.equal(true);
    expect(has(/by \(program, reason\) \(rate\(vigil_worker_restarts_total/), "restarts by reason").to.equal(true);
    expect(has(/by \(program, phase\) \(rate\(vigil_worker_hangs_total/), "hangs by phase").to.equal(true);
    expect(has(/histogram_quantile\(0\.5, sum by \(le, outcome\) \(rate\(vigil_worker_shutdown_seconds_bucket/), "p50 stop by outcome").to.equal(true);
    expect(has(/histogram_quantile\(0\.99, sum by \(le, outcome\) \(rate\(vigil_worker_shutdown_seconds_bucket/), "p99 stop by outcome").to.equal(true);
    expect(has(/vigil_worker_teardown_seconds_bucket/), "teardown seconds").to.equal(true);
    expect(has(/vigil_last_shutdown_seconds/) && has(/vigil_last_shutdown_workers/), "last shutdown").to.equal(true);
    expect(has(/rate\(vigil_watchdog_pings_total/), "watchdog pings").to.equal(true);
    expect(has(/vigil_event_loop_lag_seconds/), "event loop lag").to.equal(true);
    expect(has(/vigil_protocol_errors_total/), "protocol errors").to.equal(true);
    expect(has(/process_resident_memory_bytes/), "RSS").to.equal(true);
    expect(has(/rate\(process_cpu_seconds_total/), "CPU").to.equal(true);
  });

  it("has unique panel ids, a refId per query, no overlapping panels, and a description on every panel", () => {
    const d = load();
    const panels = allPanels(d);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).to.equal(ids.length);
    const problems: string[] = [];
    for (const p of panels) {
      const refs = (p.targets ?? []).map((t) => t.refId);
      if (new Set(refs).size !== refs.length || refs.some((r) => !r)) problems.push(`panel "${p.title}": refIds ${refs.join(",")}`);
      if (p.type !== "row" && (p.targets ?? []).length === 0) problems.push(`panel "${p.title}": no query`);
      if (p.type !== "row" && !(p as { description?: string }).description) problems.push(`panel "${p.title}": no description`);
      const { x, w } = p.gridPos;
      if (x < 0 || w < 1 || x + w > 24) problems.push(`panel "${p.title}": outside the 24-column grid`);
    }
    const cells = new Map<string, string>();
    for (const p of panels) {
      const { x, y, w, h } = p.gridPos;
      for (let i = x; i < x + w; i++)
        for (let j = y; j < y + h; j++) {
          const other = cells.get(`${i},${j}`);
          if (other) problems.push(`panels "${other}" and "${p.title}" overlap`);
          cells.set(`${i},${j}`, p.title);
        }
    }
    expect([...new Set(problems)]).to.deep.equal([]);
  });
});
