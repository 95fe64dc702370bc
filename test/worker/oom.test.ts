import { expect } from "chai";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OomCounter, ownCgroupEventsFile, parseOomKills } from "../../daemon/worker/oom.js";
import { initialState, type WorkerState } from "../../daemon/worker/lifecycle.js";
import { unexpectedEndReason } from "../../daemon/worker/policy.js";

function killed(killedAt: number | null): WorkerState {
  const base = initialState(0, { protocol: "off", readyTimeoutMs: 1, stackDumpGraceMs: 1, handlersTimeoutMs: 1, teardownHangAfterMs: 1, timeoutMs: 1, signal: "SIGTERM" }).next;
  return { ...base, phase: "exited", exit: { code: null, signal: "SIGKILL", error: null }, t: { ...base.t, killedAt, exitedAt: 5 } };
}

describe("OOM kills", () => {
  it("reads oom_kill from a cgroup v2 memory.events", () => {
    expect(parseOomKills("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n")).to.equal(2);
    expect(parseOomKills("low 0\n")).to.equal(null);
  });

  it("finds vigild's own cgroup from /proc/self/cgroup", () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-cg-"));
    writeFileSync(join(dir, "cgroup"), "0::/system.slice/vigil.service\n");
    expect(ownCgroupEventsFile(join(dir, "cgroup"))).to.equal("/sys/fs/cgroup/system.slice/vigil.service/memory.events");
  });

  it("a rising oom_kill count is consumed once", () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-cg-"));
    const file = join(dir, "memory.events");
    writeFileSync(file, "oom_kill 0\n");
    const counter = new OomCounter(file);
    expect(counter.consume()).to.equal(false);
    writeFileSync(file, "oom_kill 1\n");
    expect(counter.consume()).to.equal(true);
    expect(counter.consume()).to.equal(false);
    expect(new OomCounter(join(dir, "missing")).consume()).to.equal(false);
  });

  it("a SIGKILL vigild did not send, with an OOM kill counted, is restart reason oom; one vigild sent is not", () => {
    expect(unexpectedEndReason(killed(null), true)).to.equal("oom");
    expect(unexpectedEndReason(killed(null), false)).to.equal("crash");
    expect(unexpectedEndReason(killed(3), true)).to.equal("crash");
  });
});
