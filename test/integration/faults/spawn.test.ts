// Workers that cannot be started: a clear error naming the program, the
// program FAILED at once (no restart loop). At start that fails vigild's
// start (systemd shows why); later, the other programs are unaffected.
import { expect } from "chai";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Vigild, isAlive, stopAll, waitDead, type LogEntry } from "../../helpers/vigild.js";

const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);

describe("workers that cannot start", function () {
  this.timeout(30_000);
  afterEach(stopAll);

  it("at start, a missing command FAILS its program at once and vigild's start fails naming it", async () => {
    const v = new Vigild({ programs: { missing: { command: ["/nonexistent/bin/worker"] }, fine: { command: ["sleep", "1000"] } } });
    const { code } = await v.waitExit(10_000);
    expect(code).to.equal(1);
    expect(v.logs.some(isMsg(/^missing\/0 could not be started: spawn \/nonexistent\/bin\/worker ENOENT/))).to.equal(true);
    const failed = v.logs.find(isMsg(/^start failed: program missing FAILED \(cannot start: spawn \/nonexistent\/bin\/worker ENOENT\)/));
    expect(failed?.level).to.equal("error");
    expect(v.logs.filter(isMsg(/restarting in/))).to.have.length(0);
    // The worker that did start was stopped, not left behind.
    expect(v.logs.some((e) => e.program === "fine" && e.outcome === "clean")).to.equal(true);
  });

  it("added by a reload, a missing command, a non-executable file and an unknown user FAIL only their own programs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-noexec-"));
    const script = join(dir, "worker.sh");
    writeFileSync(script, "#!/bin/sh\nsleep 1000\n");
    chmodSync(script, 0o644);
    const v = new Vigild({ programs: { fine: { command: ["sleep", "1000"], instances: 2 } } });
    await v.waitFor(isMsg(/all 2 workers ready/));
    const added = [
      "  missing:\n    command: [/nonexistent/bin/worker]",
      `  noexec:\n    command: [${script}]`,
      "  nobody:\n    command: [sleep, \"1000\"]\n    user: no-such-user-vigil",
    ].join("\n");
    writeFileSync(v.configPath, readFileSync(v.configPath, "utf8").replace("programs:\n", `programs:\n${added}\n`));
    v.signal("SIGHUP");
    await v.waitFor(isMsg(/^program missing FAILED: cannot start: spawn \/nonexistent\/bin\/worker ENOENT/));
    await v.waitFor(isMsg(/^program noexec FAILED: cannot start: spawn .*worker\.sh EACCES/));
    await v.waitFor(isMsg(/^program nobody FAILED: cannot start: user "no-such-user-vigil" does not exist/));
    expect(await v.metric("vigil_workers", { program: "fine", state: "running" })).to.equal(2);
    expect(await v.metric("vigil_workers", { program: "missing", state: "failed" })).to.equal(1);
    const health = await fetch((await v.metricsUrl()).replace("/metrics", "/healthz"));
    expect(health.status).to.equal(503);
  });
});

describe("processes that escape a worker's process group", function () {
  this.timeout(30_000);
  afterEach(stopAll);

  it("are found through /proc when the worker stops, killed, and counted", async () => {
    // setsid puts the sleep in a session (and process group) of its own.
    const script = 'setsid sleep 1000 & echo "escaped $!"; trap "exit 0" TERM; while true; do sleep 1; done';
    const v = new Vigild({ programs: { keep: { command: ["sleep", "1000"] }, leaky: { command: ["sh", "-c", script], protocol: "off" } } });
    const line = await v.waitFor(isMsg(/^escaped \d+$/));
    const escaped = Number(line.msg.split(" ")[1]);
    expect(isAlive(escaped)).to.equal(true);
    // A reload that drops the program stops it (phased) while vigild stays up.
    writeFileSync(v.configPath, readFileSync(v.configPath, "utf8").replace(/ {2}leaky:\n(?: {4}.*\n)+/, ""));
    v.signal("SIGHUP");
    const leak = await v.waitFor(isMsg(/left 1 process\(es\) outside its process group/), 10_000);
    expect(leak.msg).to.contain(String(escaped));
    expect(await waitDead(escaped, 2000)).to.equal(true);
    expect(await v.metric("vigil_leaked_processes_total", { program: "leaky" })).to.equal(1);
  });
});
