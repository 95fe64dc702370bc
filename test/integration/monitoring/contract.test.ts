// The metric names and labels in the README's metrics table are a public contract:
// the alerting rules and the Grafana dashboard in monitoring/ may use only
// them, and a real vigild must export exactly them, in a scrape that
// `promtool check metrics` has nothing to say about.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { Vigild, py, stopAll, type LogEntry } from "../../helpers/vigild.js";
import { REPO } from "../../helpers/repo.js";

const RULES = join(REPO, "monitoring/vigil.rules.yml");
const DASHBOARD = join(REPO, "monitoring/grafana-dashboard.json");

type MetricType = "gauge" | "counter" | "histogram";
interface MetricContract {
  type: MetricType;
  labels: Record<string, readonly string[]>;
}

const PROGRAM: readonly string[] = []; // any program name
/** The README's metrics table, with the label values the code defines (daemon/core/vocabulary.ts). */
const CONTRACT: Record<string, MetricContract> = {
  vigil_workers: {
    type: "gauge",
    labels: { program: PROGRAM, state: ["starting", "running", "hung", "stopping", "killing", "backoff", "failed", "stopped"] },
  },
  vigil_worker_restarts_total: {
    type: "counter",
    // `restart` (vigilctl restart) is in the code, beyond the first metrics table.
    labels: { program: PROGRAM, reason: ["exit", "crash", "oom", "hang", "recycle", "reload", "restart"] },
  },
  vigil_worker_hangs_total: { type: "counter", labels: { program: PROGRAM, phase: ["running", "handlers", "teardown", "signal"] } },
  // `unkillable` (still there after SIGKILL) is in the code, beyond the first metrics table.
  vigil_worker_shutdown_seconds: { type: "histogram", labels: { program: PROGRAM, outcome: ["clean", "skipped", "forced", "unkillable"] } },
  vigil_worker_teardown_seconds: { type: "histogram", labels: { program: PROGRAM } },
  vigil_watchdog_pings_total: { type: "counter", labels: {} },
  vigil_event_loop_lag_seconds: { type: "gauge", labels: {} },
  vigil_last_shutdown_seconds: { type: "gauge", labels: {} },
  vigil_last_shutdown_workers: { type: "gauge", labels: { outcome: ["clean", "skipped", "forced", "unkillable"] } },
  vigil_protocol_errors_total: { type: "counter", labels: { program: PROGRAM } },
  // Processes that escaped a stopped worker's process group, killed.
  vigil_leaked_processes_total: { type: "counter", labels: { program: PROGRAM } },
  vigil_worker_output_dropped_bytes_total: { type: "counter", labels: { program: PROGRAM } },
  vigil_socket_connections_queued: { type: "gauge", labels: { socket: [] } },
  // Workers still there some seconds after SIGKILL (uninterruptible sleep), given up on.
  vigil_worker_unkillable_total: { type: "counter", labels: { program: PROGRAM } },
};

/** prom-client's default metrics as vigild registers them (daemon/metrics/defaults.ts). */
const PROM_CLIENT_DEFAULTS = [
  "process_cpu_user_seconds_total",
  "process_cpu_system_seconds_total",
  "process_cpu_seconds_total",
  "process_start_time_seconds",
  "process_resident_memory_bytes",
  "process_virtual_memory_bytes",
  "process_heap_bytes",
  "process_open_fds",
  "process_max_fds",
  "nodejs_active_requests",
  "nodejs_heap_size_total_bytes",
  "nodejs_heap_size_used_bytes",
  "nodejs_external_memory_bytes",
  "nodejs_heap_space_size_total_bytes",
  "nodejs_heap_space_size_used_bytes",
  "nodejs_heap_space_size_available_bytes",
  "nodejs_version_info",
  "nodejs_gc_duration_seconds_bucket",
  "nodejs_gc_duration_seconds_sum",
  "nodejs_gc_duration_seconds_count",
];

/** Labels every scraped series has, added by Prometheus. */
const TARGET_LABELS = ["job", "instance"];

/** The series names PromQL may select, each with the labels it carries. */
function selectableSeries(): Map<string, Record<string, readonly string[]>> {
  const names = new Map<string, Record<string, readonly string[]>>();
  const target = Object.fromEntries(TARGET_LABELS.map((l) => [l, PROGRAM]));
  for (const [name, m] of Object.entries(CONTRACT)) {
    const labels = { ...m.labels, ...target };
    if (m.type === "histogram") {
      names.set(`${name}_bucket`, { ...labels, le: PROGRAM });
      names.set(`${name}_sum`, labels);
      names.set(`${name}_count`, labels);
    } else {
      names.set(name, labels);
    }
  }
  for (const name of PROM_CLIENT_DEFAULTS) names.set(name, target);
  // Not exported by vigild: Prometheus adds it for every target it scrapes.
  names.set("up", target);
  return names;
}

const KEYWORDS = new Set(["and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "inf", "nan", "atan2"]);

export interface Selector {
  name: string;
  matchers: Array<{ label: string; op: string; value: string }>;
}

/** The series selectors of a PromQL expression (names with their label matchers), by regex. */
export function selectorsOf(expr: string): { selectors: Selector[]; groupingLabels: string[] } {
  const selectors: Selector[] = [];
  const groupingLabels: string[] = [];
  // Label matchers first, while their strings are intact.
  let rest = expr.replace(/([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}/g, (_m, name: string | undefined, body: string) => {
    const matchers = [...body.matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)].map((x) => ({
      label: x[1]!,
      op: x[2]!,
      value: x[3]!,
    }));
    const named = name && !KEYWORDS.has(name) ? name : undefined;
    const fromMatcher = matchers.find((m) => m.label === "__name__" && m.op === "=")?.value;
    if (named ?? fromMatcher) selectors.push({ name: (named ?? fromMatcher)!, matchers: matchers.filter((m) => m.label !== "__name__") });
    return " ";
  });
  rest = rest
    .replace(/"(?:[^"\\]|\\.)*"/g, " ") // strings (e.g. label_replace arguments)
    .replace(/\[[^\]]*\]/g, " ") // ranges and subqueries, with Grafana's $__rate_interval
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_m, _kw, labels: string) => {
      groupingLabels.push(...labels.split(",").map((l) => l.trim()).filter(Boolean));
      return " ";
    });
  for (const m of rest.matchAll(/(?<![\w.$])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()/g)) {
    const name = m[1]!;
    if (!KEYWORDS.has(name.toLowerCase())) selectors.push({ name, matchers: [] });
  }
  return { selectors, groupingLabels };
}

/** Problems with one expression: unknown series, unknown labels, label values outside the contract. */
function contractProblems(expr: string): string[] {
  const series = selectableSeries();
  const allLabels = new Set([...series.values()].flatMap((labels) => Object.keys(labels)));
  const problems: string[] = [];
  const { selectors, groupingLabels } = selectorsOf(expr);
  if (selectors.length === 0) problems.push("selects no metric at all");
  for (const { name, matchers } of selectors) {
    const labels = series.get(name);
    if (!labels) {
      const hint = CONTRACT[name]?.type === "histogram" ? ` (a histogram: use ${name}_bucket, _sum or _count)` : "";
      problems.push(`unknown metric ${name}${hint}`);
      continue;
    }
    for (const { label, op, value } of matchers) {
      const values = labels[label];
      if (!values) {
        problems.push(`${name} has no label ${label}`);
        continue;
      }
      // Grafana variables and open sets are not checked; fixed values must exist.
      if (values.length === 0 || value.includes("$")) continue;
      const wanted = op === "=" || op === "!=" ? [value] : /^[\w|]+$/.test(value) ? value.split("|") : [];
      for (const v of wanted) if (!values.includes(v)) problems.push(`${name}{${label}="${v}"}: no such ${label} (known: ${values.join(", ")})`);
    }
  }
  for (const label of groupingLabels) if (!allLabels.has(label)) problems.push(`grouping by unknown label ${label}`);
  return problems;
}

interface Panel {
  title?: string;
  type: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

function dashboardExpressions(): Array<{ where: string; expr: string }> {
  const dash = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
    panels: Panel[];
    templating: { list: Array<{ name: string; type: string; query?: unknown; definition?: string }> };
    annotations?: { list: Array<{ name: string; expr?: string }> };
  };
  const out: Array<{ where: string; expr: string }> = [];
  const walk = (panels: Panel[]): void => {
    for (const p of panels) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ where: `panel "${p.title}"`, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(dash.panels);
  for (const v of dash.templating.list) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : (v.query as { query: string }).query;
    // label_values(SELECTOR, label): the selector is the expression.
    const inner = /^label_values\((.*),\s*\w+\)$/.exec(q)?.[1] ?? q;
    out.push({ where: `variable $${v.name}`, expr: inner });
  }
  for (const a of dash.annotations?.list ?? []) if (a.expr) out.push({ where: `annotation "${a.name}"`, expr: a.expr });
  return out;
}

function ruleExpressions(): Array<{ where: string; expr: string }> {
  const doc = parse(readFileSync(RULES, "utf8")) as { groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }> };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: String(r.expr) })));
}

describe("monitoring: the metrics contract", function () {
  this.timeout(60_000);
  afterEach(stopAll);

  describe("the PromQL checker itself", () => {
    it("finds names, matchers and grouping labels, and skips functions, keywords, strings and ranges", () => {
      const { selectors, groupingLabels } = selectorsOf(
        'histogram_quantile(0.99, sum by (le, outcome) (rate(vigil_worker_shutdown_seconds_bucket{program=~"$program"}[$__rate_interval]))) ' +
          'and on (job, instance) (up offset 15m) or vector(0) * 1e3 unless time() - process_start_time_seconds > 3600',
      );
      expect(selectors.map((s) => s.name)).to.deep.equal(["vigil_worker_shutdown_seconds_bucket", "up", "process_start_time_seconds"]);
      expect(selectors[0]!.matchers).to.deep.equal([{ label: "program", op: "=~", value: "$program" }]);
      expect(groupingLabels).to.deep.equal(["le", "outcome", "job", "instance"]);
    });

    it("rejects unknown names, bare histogram names, unknown labels and label values", () => {
      expect(contractProblems("vigil_worker_restart_total")).to.deep.equal(["unknown metric vigil_worker_restart_total"]);
      expect(contractProblems("rate(vigil_worker_shutdown_seconds[5m])")[0]).to.match(/use vigil_worker_shutdown_seconds_bucket/);
      expect(contractProblems('vigil_workers{status="failed"}')).to.deep.equal(["vigil_workers has no label status"]);
      expect(contractProblems('vigil_workers{state="FAILED"}')[0]).to.match(/no such state/);
      expect(contractProblems('vigil_worker_hangs_total{phase=~"handlers|shutdown"}')[0]).to.match(/phase="shutdown"/);
      expect(contractProblems("sum by (programme) (vigil_workers)")).to.deep.equal(["grouping by unknown label programme"]);
      expect(contractProblems('sum by (program) (vigil_workers{state="failed"})')).to.deep.equal([]);
    });
  });

  it("the alerting rules use only the contract's metrics, labels and label values", () => {
    const exprs = ruleExpressions();
    expect(exprs.length).to.be.at.least(10);
    const problems = exprs.flatMap(({ where, expr }) => contractProblems(expr).map((p) => `${where}: ${p}`));
    expect(problems).to.deep.equal([]);
  });

  it("every dashboard panel, variable and annotation uses only the contract's metrics, labels and label values", () => {
    const exprs = dashboardExpressions();
    expect(exprs.length).to.be.at.least(20);
    const problems = exprs.flatMap(({ where, expr }) => contractProblems(expr).map((p) => `${where}: ${p}`));
    expect(problems).to.deep.equal([]);
  });

  it("the dashboard shows every metric of the metrics contract", () => {
    const used = new Set(dashboardExpressions().flatMap(({ expr }) => selectorsOf(expr).selectors.map((s) => s.name)));
    const missing = Object.entries(CONTRACT)
      .filter(([name, m]) => (m.type === "histogram" ? !["_bucket", "_sum", "_count"].some((s) => used.has(name + s)) : !used.has(name)))
      .map(([name]) => name);
    expect(missing).to.deep.equal([]);
  });

  it("a real vigild's scrape passes `promtool check metrics` and exports exactly the metrics contract, with its types and labels", async () => {
    // A previous stop leaves the report that vigil_last_shutdown_* come from.
    const previous = new Vigild({ programs: { p: { command: ["sleep", "1000"] } } });
    await previous.waitFor((e) => /^all 1 workers ready/.test(e.msg));
    previous.signal("SIGTERM");
    await previous.waitExit();
    const v = new Vigild(
      {
        state_dir: join(previous.dir, "state"),
        programs: {
          web: { command: py("py_ok.py"), protocol: "on" },
          crashy: { command: py("py_crash.py", "--after", "0.2"), protocol: "on", restart: { backoff_initial: "100ms", limit: "50 in 60s" } },
          noisy: { command: py("py_garbage.py"), protocol: "on" },
        },
      },
      { env: { WATCHDOG_USEC: "1000000" } },
    );
    const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);
    await v.waitFor(isMsg(/^crashy\/0.* restarting in/), 15_000);
    await v.waitFor(isMsg(/garbage sent/), 15_000);
    const text = await v.scrape();

    const lint = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8", timeout: 30_000 });
    expect(lint.error, "promtool must be installed (Debian package prometheus)").to.equal(undefined);
    expect(`${lint.stdout}${lint.stderr}`).to.equal("");
    expect(lint.status).to.equal(0);

    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    const vigilTypes = Object.fromEntries([...types].filter(([name]) => name.startsWith("vigil_")).sort());
    const expected = Object.fromEntries(Object.entries(CONTRACT).map(([name, m]) => [name, m.type] as const).sort());
    expect(vigilTypes).to.deep.equal(expected);

    // Every sample's labels are the contract's, with the contract's values.
    const series = selectableSeries();
    const problems: string[] = [];
    for (const line of text.split("\n")) {
      const m = /^(vigil_\w+)(?:\{(.*)\})? \S+$/.exec(line);
      if (!m) continue;
      const allowed = series.get(m[1]!);
      if (!allowed) {
        problems.push(`unexpected series ${m[1]}`);
        continue;
      }
      for (const [, label, value] of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
        const values = allowed[label!];
        if (!values) problems.push(`${m[1]} has label ${label}`);
        else if (values.length > 0 && !values.includes(value!)) problems.push(`${m[1]}{${label}="${value}"}`);
      }
    }
    expect(problems).to.deep.equal([]);
    // The defaults the rules and the dashboard rely on are really there.
    const defaultsUsed = new Set(
      [...dashboardExpressions(), ...ruleExpressions()].flatMap(({ expr }) =>
        selectorsOf(expr).selectors.map((s) => s.name).filter((n) => PROM_CLIENT_DEFAULTS.includes(n)),
      ),
    );
    expect(defaultsUsed.size).to.be.at.least(3);
    for (const name of defaultsUsed) expect(text, name).to.match(new RegExp(`^${name}(\\{.*\\})? `, "m"));
    // The first ping is due half a WATCHDOG_USEC after start: wait for it rather than race it.
    const until = Date.now() + 5000;
    let pings = await v.metric("vigil_watchdog_pings_total");
    while (!(pings > 0) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      pings = await v.metric("vigil_watchdog_pings_total");
    }
    expect(pings).to.be.above(0);
  });
});
