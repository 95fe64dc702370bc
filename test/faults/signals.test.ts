// Signal storms: one coherent outcome, no crash, no duplicate workers.
import { expect } from "chai";
import { readFileSync, writeFileSync } from "node:fs";
import { Vigild, isAlive, py, stopAll, type LogEntry } from "../helpers/vigild.js";

const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);

function livePids(v: Vigild, program: string): number[] {
  return [...v.workerPids].filter((pid) => isAlive(pid) && v.logs.some((e) => e.pid === pid && e.program === program));
}

describe("signal storms", function () {
  this.timeout(60_000);
  afterEach(stopAll);

  it("100 SIGHUPs in a second, with a changed file: the reloads collapse, workers end up exactly as configured", async () => {
    const v = new Vigild({ programs: { web: { command: py("py_ok.py"), protocol: "on", instances: 2, env: { V: "1" } }, plain: { command: ["sleep", "1000"] } } });
    await v.waitFor(isMsg(/all 3 workers ready/));
    writeFileSync(v.configPath, readFileSync(v.configPath, "utf8").replace('V: "1"', 'V: "2"'));
    for (let i = 0; i < 100; i++) {
      v.signal("SIGHUP");
      await new Promise((r) => setTimeout(r, 10));
    }
    // Settled: no reload in progress and every worker replaced once to the new config.
    await v.waitUntil(() => (v.logs.filter(isMsg(/^reload done/)).length >= 1 && livePids(v, "web").length === 2 ? true : undefined), 30_000, "settled reloads");
    await new Promise((r) => setTimeout(r, 1500));
    const reloads = v.logs.filter(isMsg(/^reload done/)).length;
    expect(reloads).to.be.within(1, 100);
    expect(livePids(v, "web")).to.have.length(2);
    expect(livePids(v, "plain")).to.have.length(1);
    expect(await v.metric("vigil_workers", { program: "web", state: "running" })).to.equal(2);
    expect(v.exitCode).to.equal(null);
  });

  it("SIGTERM during a reload stops everything cleanly", async () => {
    const v = new Vigild({ programs: { web: { command: py("py_ok.py"), protocol: "on", instances: 2, env: { V: "1" } } } });
    await v.waitFor(isMsg(/all 2 workers ready/));
    writeFileSync(v.configPath, readFileSync(v.configPath, "utf8").replace('V: "1"', 'V: "2"'));
    v.signal("SIGHUP");
    await v.waitFor(isMsg(/^reloading: changed web/));
    v.signal("SIGTERM");
    const { code } = await v.waitExit();
    expect(code).to.equal(0);
    for (const pid of v.workerPids) expect(isAlive(pid), `worker ${pid}`).to.equal(false);
  });

  it("SIGHUP during a stop is ignored and said so", async () => {
    const v = new Vigild({ programs: { slow: { command: py("py_handler_sleep.py", "1"), protocol: "on", shutdown: { timeout: "3s" } } } });
    await v.waitFor(isMsg(/all 1 workers ready/));
    v.signal("SIGTERM");
    await v.waitFor(isMsg(/^stopping 1 workers/));
    v.signal("SIGHUP");
    await v.waitFor(isMsg(/SIGHUP while stopping: not reloading now/));
    const { code } = await v.waitExit();
    expect(code).to.equal(0);
    expect(v.logs.filter(isMsg(/ spawned$/))).to.have.length(1);
  });
});
