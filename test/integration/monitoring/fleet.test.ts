// docs/fleet.md, checked: two vigild (two "hosts") scraped by Debian's real
// Prometheus with the scrape configuration the fleet notes give (file-based
// service discovery; only its paths changed for the test), evaluating the
// shipped rules; the shipped dashboard's instance variable and panels asked
// of it as Grafana would. Loopback only; every process stopped by pid.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { DASHBOARD, Prometheus, RULES, dashboardQueries, stopAllPrometheus } from "../../helpers/prometheus.js";
import { REPO } from "../../helpers/repo.js";
import { Vigild, py, stopAll, type LogEntry } from "../../helpers/vigild.js";

const FLEET = join(REPO, "docs/fleet.md");
const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);

/** The fenced YAML block of docs/fleet.md whose first line is the comment `# FILE...`. */
function docBlock(file: string): unknown {
  const blocks = [...readFileSync(FLEET, "utf8").matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  const block = blocks.find((b) => b.startsWith(`# ${file}`));
  if (!block) throw new Error(`docs/fleet.md has no yaml block starting "# ${file}"`);
  return parse(block);
}

interface ScrapeConfig {
  job_name: string;
  file_sd_configs?: Array<{ files: string[] }>;
}
interface PrometheusYml {
  rule_files: string[];
  scrape_configs: ScrapeConfig[];
}
type TargetGroup = { targets: string[]; labels: Record<string, string> };

/** prometheus.yml as the fleet notes give it, with the test's rule file and target directory. */
function fleetConfig(dir: string): Record<string, unknown> {
  const doc = docBlock("/etc/prometheus/prometheus.yml") as PrometheusYml;
  expect(doc.rule_files).to.deep.equal(["/etc/prometheus/rules/vigil.rules.yml"]);
  const job = doc.scrape_configs.find((s) => s.job_name === "vigil");
  expect(job?.file_sd_configs?.[0]?.files, "the vigil job's file_sd_configs").to.deep.equal(["/etc/prometheus/vigil-targets/*.yml"]);
  return {
    ...doc,
    rule_files: [RULES],
    scrape_configs: doc.scrape_configs.map((s) =>
      s.job_name !== "vigil" ? s : { ...s, file_sd_configs: [{ files: [join(dir, "vigil-targets/*.yml")] }] },
    ),
  };
}

/** A Grafana multi-value regex variable's value for these hosts, escaped as Grafana does. */
function instanceValue(...hosts: string[]): string {
  const escaped = hosts.map((h) => h.replace(/[.*+?^${}()|[\]\\]/g, "\\\\$&"));
  return escaped.length === 1 ? escaped[0]! : `(${escaped.join("|")})`;
}

describe("monitoring: a fleet of two vigild under one Prometheus, as docs/fleet.md sets it up", function () {
  this.timeout(90_000);

  afterEach(async () => {
    await stopAllPrometheus();
    await stopAll();
  });

  it("scrapes both through file_sd, alerts per host, and the dashboard tells the hosts apart", async () => {
    // Host A: one web worker and a program that crash-loops into FAILED; host B: two web workers.
    const a = new Vigild(
      {
        programs: {
          web: { command: py("py_ok.py"), protocol: "on" },
          crashy: { command: py("py_crash.py", "--after", "0.5"), protocol: "on", restart: { policy: "always", backoff_initial: "100ms", limit: "2 in 60s" } },
        },
      },
      { env: { WATCHDOG_USEC: "1000000" } },
    );
    const b = new Vigild({ programs: { web: { command: py("py_ok.py"), protocol: "on", instances: 2 } } }, { env: { WATCHDOG_USEC: "1000000" } });
    const hostA = new URL(await a.metricsUrl()).host;
    const hostB = new URL(await b.metricsUrl()).host;

    // The target file of the notes, listing these two hosts instead of theirs.
    const example = docBlock("/etc/prometheus/vigil-targets/") as TargetGroup[];
    const groups: TargetGroup[] = [{ targets: [hostA, hostB], labels: example[0]!.labels }];
    const prom = await Prometheus.startWith(fleetConfig, { "vigil-targets/hosts.yml": stringify(groups) });

    // Both targets are found and up, with the file's labels.
    const up = await prom.waitUntil("both vigild targets up", async () => {
      const samples = await prom.query('up{job="vigil"} == 1');
      return samples.length === 2 ? samples : undefined;
    });
    expect(up.map((s) => s.metric.instance).sort()).to.deep.equal([hostA, hostB].sort());
    for (const s of up) expect(s.metric).to.include(example[0]!.labels);

    // The dashboard's instance variable, asked as Grafana asks it, lists both hosts.
    const dash = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { templating: { list: Array<{ name: string; query?: { query?: string } }> } };
    const variable = dash.templating.list.find((v) => v.name === "instance")?.query?.query ?? "";
    const labelValues = /^label_values\((.+), (\w+)\)$/.exec(variable.replaceAll("$job", "vigil"));
    expect(labelValues, `instance variable: ${variable}`).to.not.equal(null);
    const instances = await prom.waitUntil("the instance variable lists both hosts", async () => {
      const values = [...new Set((await prom.series(labelValues![1]!)).map((s) => s[labelValues![2]!]!))].sort();
      return values.length === 2 ? values : undefined;
    });
    expect(instances).to.deep.equal([hostA, hostB].sort());

    // Host A's crashy program ends FAILED: its alert names host A, and host B raises nothing.
    await a.waitFor(isMsg(/program crashy FAILED/), 20_000);
    const failed = await prom.waitUntil("VigilProgramFailed", async () =>
      (await prom.alerts()).find((al) => al.labels.alertname === "VigilProgramFailed"),
    );
    expect(failed.labels).to.include({ program: "crashy", instance: hostA, job: "vigil" });
    expect(failed.annotations.summary).to.equal(`vigil program crashy is FAILED on ${hostA}`);
    expect((await prom.alerts()).filter((al) => al.labels.instance === hostB)).to.deep.equal([]);

    // A dashboard panel, with the instance variable set to one host, some, or All.
    const panel = async (title: string, instance: string): Promise<number> => {
      const q = dashboardQueries({ instance }).find((x) => x.title === title);
      if (!q) throw new Error(`no dashboard panel "${title}"`);
      const result = await prom.query(q.expr);
      return result.reduce((sum, s) => sum + Number(s.value[1]), 0);
    };
    const settle = (title: string, instance: string, want: number) =>
      prom.waitUntil(`"${title}" = ${want} for ${instance}`, async () => ((await panel(title, instance)) === want ? want : undefined));
    expect(await settle("Running workers", instanceValue(hostA), 1)).to.equal(1);
    expect(await settle("Running workers", instanceValue(hostB), 2)).to.equal(2);
    expect(await settle("Running workers", ".*", 3)).to.equal(3);
    expect(await settle("Running workers", instanceValue(hostA, hostB), 3)).to.equal(3);
    expect(await settle("FAILED worker slots", instanceValue(hostA), 1)).to.equal(1);
    expect(await settle("FAILED worker slots", instanceValue(hostB), 0)).to.equal(0);
    // The panels about vigild itself draw one line per host.
    const lag = await prom.query(dashboardQueries({ instance: ".*" }).find((x) => x.title === "Event loop lag")!.expr);
    expect(lag.map((s) => s.metric.instance).sort()).to.deep.equal([hostA, hostB].sort());
    // Every query of the dashboard runs (PromQL errors throw) with one host picked.
    for (const { expr } of dashboardQueries({ instance: instanceValue(hostB) })) await prom.query(expr);

    // Host B's vigild goes away: VigilDown for host B alone.
    b.signal("SIGTERM");
    expect((await b.waitExit(15_000)).code).to.equal(0);
    const down = await prom.waitUntil("VigilDown for host B", async () =>
      (await prom.alerts()).find((al) => al.labels.alertname === "VigilDown"),
    );
    expect(down.labels.instance).to.equal(hostB);
    expect((await prom.alerts()).filter((al) => al.labels.alertname === "VigilDown").map((al) => al.labels.instance)).to.deep.equal([hostB]);
  });
});
