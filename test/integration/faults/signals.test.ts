// Signal storms: one coherent outcome, no crash, no duplicate workers.
import { expect } from "chai";
import { readFileSync, writeFileSync } from "node:fs";
import { Vigild, isAlive, py, stopAll, type LogEntry } from "../../helpers/vigild.js";

const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);

function livePids(v: Vigild, program: string): number[] {
  return [...v.workerPids].filter((pid) => isAlive(pid) && v.logs.some((e) => e.pid === pid && e.program === program));
}

describe("signal storms", function () {
  this.timeout(60_000);
  afterEach(stopAll);

  it("100 SIGHUPs during one reload collapse into one more reload; workers end up exactly as configured", async () => {
    const v = new Vigild({ programs: { web: { command: py("py_ok.py"), protocol: "on", instances: 2 }, plain: { command: ["sleep", "1000"] } } });
    await v.waitFor(isMsg(/all 3 workers ready/));
    // The new web workers say ready only after 1.5 s, so the first reload is still settling through the whole storm.
    const slow = ["sh", "-c", 'sleep 1.5; exec "$0" "$@"', ...py("py_ok.py")];
    const text = readFileSync(v.configPath, "utf8");
    const changed = text.replace(/^( {4}command:\n)((?: {6}- .*\n)+)/m, (_, head: string) => head + slow.map((a) => `      - ${JSON.stringify(a)}\n`).join(""));
    expect(changed, "the web command replaced").to.not.equal(text);
    writeFileSync(v.configPath, changed);
    v.signal("SIGHUP");
    await v.waitFor(isMsg(/^reloading: changed web/));
    for (let i = 0; i < 99; i++) {
      v.signal("SIGHUP");
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(v.logs.filter(isMsg(/^reload done/)), "reloads done during the storm").to.have.length(0);
    // One reload that replaces web, then the one that the storm queued, which finds nothing to change.
    await v.waitUntil(() => (v.logs.filter(isMsg(/^reload done/)).length >= 2 ? true : undefined), 30_000, "two reloads done");
    await new Promise((r) => setTimeout(r, 1500));
    expect(v.logs.filter(isMsg(/^reload done/)).map((e) => e.msg)).to.deep.equal(["reload done: changed web", "reload done: no program changed"]);
    expect(v.logs.filter(isMsg(/^reloading: /))).to.have.length(2);
    expect(v.logs.filter((e) => e.program === "web" && / spawned$/.test(e.msg)), "web workers spawned: 2, then 2 replacements").to.have.length(4);
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
