import { expect } from "chai";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  OOM_KILL_MATCH_MS,
  OomKills,
  attributeOomKill,
  oomCountFile,
  oomCountReader,
  ownOomCountFile,
  parseOomKills,
  type OomLedger,
} from "../../../daemon/worker/oom.js";
import { initialState, type WorkerState } from "../../../daemon/worker/lifecycle.js";
import { unexpectedEndReason } from "../../../daemon/worker/policy.js";

function killed(killedAt: number | null): WorkerState {
  const base = initialState(0, { protocol: "off", readyTimeoutMs: 1, stackDumpGraceMs: 1, handlersTimeoutMs: 1, teardownHangAfterMs: 1, timeoutMs: 1, signal: "SIGTERM" }).next;
  return { ...base, phase: "exited", exit: { code: null, signal: "SIGKILL", error: null }, t: { ...base.t, killedAt, exitedAt: 5 } };
}

/** A hybrid host (Debian 12 booted with cgroup v1, this kind of machine): memory on its own v1 hierarchy. */
const HYBRID_CGROUP = "9:name=systemd:/\n4:memory:/system.slice/vigil.service\n1:cpu:/\n0::/system.slice/vigil.service\n";
const HYBRID_MOUNTS = [
  "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
  "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu",
  "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
  "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
  "",
].join("\n");
/** A cgroup v2 host (Debian 12, Ubuntu 22.04+, RHEL 9). */
const V2_CGROUP = "0::/system.slice/vigil.service\n";
const V2_MOUNTS = "30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";

describe("OOM kills", () => {
  describe("where the count is", () => {
    it("v1 memory controller (hybrid): memory.oom_control of vigild's memory cgroup", () => {
      expect(oomCountFile(HYBRID_CGROUP, HYBRID_MOUNTS)).to.equal("/sys/fs/cgroup/memory/system.slice/vigil.service/memory.oom_control");
    });

    it("cgroup v2: memory.events of vigild's cgroup", () => {
      expect(oomCountFile(V2_CGROUP, V2_MOUNTS)).to.equal("/sys/fs/cgroup/system.slice/vigil.service/memory.events");
    });

    it("memory in a combined v1 hierarchy, and a mount whose root is not the hierarchy's", () => {
      const cgroup = "3:cpu,memory:/machine.slice/ct/app\n";
      const mounts = "40 31 0:40 /machine.slice/ct /sys/fs/cgroup/cpu,memory ro - cgroup cgroup rw,cpu,memory\n";
      expect(oomCountFile(cgroup, mounts)).to.equal("/sys/fs/cgroup/cpu,memory/app/memory.oom_control");
      // A cgroup outside what is mounted cannot be read.
      expect(oomCountFile("3:cpu,memory:/elsewhere\n", mounts)).to.equal(null);
    });

    it("a container's cgroup namespace: the root cgroup, and an escaped mount point", () => {
      expect(oomCountFile("4:memory:/\n0::/..\n", "175 174 0:32 / /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n")).to.equal(
        "/sys/fs/cgroup/memory/memory.oom_control",
      );
      expect(oomCountFile(V2_CGROUP, "30 24 0:26 / /mnt/cg\\040two rw - cgroup2 none rw\n")).to.equal("/mnt/cg two/system.slice/vigil.service/memory.events");
    });

    it("nothing mounted: no count", () => {
      expect(oomCountFile(V2_CGROUP, "")).to.equal(null);
      expect(oomCountFile("", V2_MOUNTS)).to.equal(null);
      expect(ownOomCountFile("/nonexistent")).to.equal(null);
    });

    it("on this machine, the file found holds an oom_kill count", function () {
      const file = ownOomCountFile();
      if (file === null || !existsSync(file)) {
        console.log(`      (no memory cgroup count here: ${file ?? "no cgroup mount"})`);
        this.skip();
      }
      expect(parseOomKills(readFileSync(file, "utf8")), file).to.be.a("number");
    });

    it("reads oom_kill from memory.events (v2) and memory.oom_control (v1)", () => {
      expect(parseOomKills("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n")).to.equal(2);
      expect(parseOomKills("oom_kill_disable 0\nunder_oom 0\noom_kill 7\n")).to.equal(7);
      expect(parseOomKills("low 0\n")).to.equal(null);
    });
  });

  describe("which worker was OOM-killed (attributeOomKill)", () => {
    const at = (seen: number | null, ...unmatched: number[]): OomLedger => ({ seen, unmatched });
    const cases: Array<{ what: string; ledger: OomLedger; count: number | null; outside: boolean; now: number; oom: boolean; after: OomLedger }> = [
      { what: "kill -9, count unchanged: crash", ledger: at(3), count: 3, outside: true, now: 100, oom: false, after: at(3) },
      { what: "SIGKILL, count up by one: oom", ledger: at(3), count: 4, outside: true, now: 100, oom: true, after: at(4) },
      { what: "two killed at once, first end: oom, one left", ledger: at(3), count: 5, outside: true, now: 100, oom: true, after: at(5, 100) },
      { what: "two killed at once, second end: oom from what is left", ledger: at(5, 100), count: 5, outside: true, now: 150, oom: true, after: at(5) },
      { what: "a third SIGKILL after both were matched: crash", ledger: at(5), count: 5, outside: true, now: 200, oom: false, after: at(5) },
      { what: "a clean exit takes nothing, but notes the kill", ledger: at(3), count: 4, outside: false, now: 100, oom: false, after: at(4, 100) },
      { what: "an old unmatched kill (a worker's child) is dropped: crash", ledger: at(4, 100), count: 4, outside: true, now: 100 + OOM_KILL_MATCH_MS + 1, oom: false, after: at(4) },
      { what: "an unmatched kill still within the window: oom", ledger: at(4, 100), count: 4, outside: true, now: 100 + OOM_KILL_MATCH_MS, oom: true, after: at(4) },
      { what: "count unreadable: crash, ledger kept", ledger: at(3), count: null, outside: true, now: 100, oom: false, after: at(3) },
      { what: "count unreadable, earlier kill still unmatched: oom", ledger: at(3, 90), count: null, outside: true, now: 100, oom: true, after: at(3) },
      { what: "no earlier reading: the count is only a baseline", ledger: at(null), count: 9, outside: true, now: 100, oom: false, after: at(9) },
      { what: "the count went down (another cgroup): start over from it", ledger: at(9), count: 2, outside: true, now: 100, oom: false, after: at(2) },
    ];
    for (const c of cases) {
      it(c.what, () => {
        const result = attributeOomKill(c.ledger, c.count, c.outside, c.now);
        expect(result.oomKilled).to.equal(c.oom);
        expect(result.ledger).to.deep.equal(c.after);
      });
    }

    it("a burst of kills is held to a bounded list", () => {
      const result = attributeOomKill(at(0), 1_000_000, false, 1);
      expect(result.ledger.unmatched.length).to.be.within(1, 64);
      expect(result.ledger.seen).to.equal(1_000_000);
    });
  });

  describe("OomKills over a count file", () => {
    function fakeCgroup(kind: "v1" | "v2"): { file: string; set: (n: number) => void } {
      const dir = mkdtempSync(join(tmpdir(), "vigil-cg-"));
      const file = join(dir, kind === "v1" ? "memory.oom_control" : "memory.events");
      const set = (n: number) =>
        writeFileSync(file, kind === "v1" ? `oom_kill_disable 0\nunder_oom 0\noom_kill ${n}\n` : `low 0\nhigh 0\nmax 9\noom 9\noom_kill ${n}\noom_group_kill 0\n`);
      set(0);
      return { file, set };
    }

    for (const kind of ["v1", "v2"] as const) {
      it(`${kind}: two workers OOM-killed at once are both oom; a kill -9 after that is a crash`, () => {
        const cg = fakeCgroup(kind);
        const oom = new OomKills(oomCountReader(cg.file));
        cg.set(2);
        expect(oom.attribute(true, 1_000), "first end handled").to.equal(true);
        expect(oom.attribute(true, 1_020), "second end handled").to.equal(true);
        expect(oom.attribute(true, 1_040), "kill -9, no OOM").to.equal(false);
      });
    }

    it("a kill -9 while no OOM kill happened is a crash, and does not use up a later one", () => {
      const cg = fakeCgroup("v2");
      const oom = new OomKills(oomCountReader(cg.file));
      expect(oom.attribute(true, 10)).to.equal(false);
      cg.set(1);
      expect(oom.attribute(true, 20)).to.equal(true);
    });

    it("the worker killed by a person and the one killed by the OOM killer, ended between two readings: one of each", () => {
      const cg = fakeCgroup("v1");
      const oom = new OomKills(oomCountReader(cg.file));
      cg.set(1);
      const labels = [oom.attribute(true, 10), oom.attribute(true, 11)];
      expect(labels.filter((x) => x)).to.have.length(1);
    });

    it("an OOM kill of a worker's child, seen at a clean exit, is not taken by a kill -9 much later", () => {
      const cg = fakeCgroup("v2");
      const oom = new OomKills(oomCountReader(cg.file));
      cg.set(1);
      expect(oom.attribute(false, 0)).to.equal(false);
      expect(oom.attribute(true, OOM_KILL_MATCH_MS + 1)).to.equal(false);
    });

    it("a missing file never labels oom", () => {
      const oom = new OomKills(oomCountReader(join(tmpdir(), "vigil-no-such-cgroup", "memory.events")));
      expect(oom.attribute(true, 1)).to.equal(false);
      expect(new OomKills(oomCountReader(null)).attribute(true, 1)).to.equal(false);
    });
  });

  it("a SIGKILL vigild did not send, attributed to an OOM kill, is restart reason oom; one vigild sent is not", () => {
    expect(unexpectedEndReason(killed(null), true)).to.equal("oom");
    expect(unexpectedEndReason(killed(null), false)).to.equal("crash");
    expect(unexpectedEndReason(killed(3), true)).to.equal("crash");
  });
});
