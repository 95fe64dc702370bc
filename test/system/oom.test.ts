// A worker that the kernel's OOM killer kills, under a real systemd: vigil
// runs under a memory limit, a worker allocates until it is killed beside a
// well-behaved one, and the restart must say `oom` (metrics and journal)
// while vigild itself and the other worker carry on.
//
// Where the limit comes from depends on the machine. With the memory
// controller on cgroup v2, a drop-in gives vigil.service `MemoryMax=`, as on
// a production host. On a hybrid (cgroup v1) host, systemd-nspawn mounts the
// v1 memory hierarchy read-only into the container, so the container's
// systemd cannot apply `MemoryLimit=` (it accepts it and nothing happens);
// the host then does what systemd would: it makes a limited memory cgroup
// below the container's and moves the container's PID 1 into it before
// vigil.service starts, so vigild and its workers are born in it.
//
// Its own container (booted once for this file); skipped, with the reason
// printed, where systemd-nspawn cannot run; under CI that is a failure.
import { expect } from "chai";
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SRC, sleep, start, unavailableReason, type Container } from "./container.js";

const UNIT = "vigil.service";
const CONFIG = "/etc/vigil/vigil.yaml";
const DROPIN_DIR = "/etc/systemd/system/vigil.service.d";
const PY = "/usr/bin/python3";
/** Allocators take a token each from here; vigil.service may write below /run/vigil (RuntimeDirectory). */
const TOKENS = "/run/vigil/oom-tokens";
const ALLOCATOR = "/etc/vigil/allocate.py";
/** Room for vigild (~70 MiB of Node) and a small worker, and far less than an allocator wants. */
const LIMIT_MIB = 320;

// Idles until it can take a token, then allocates (and writes, so it is
// resident) 8 MiB every 50 ms until the OOM killer ends it. A restarted
// allocator finds no token left: one token, one OOM kill.
const ALLOCATOR_PY = `import os, time
tokens = ${JSON.stringify(TOKENS)}

def take():
    for name in sorted(os.listdir(tokens)) if os.path.isdir(tokens) else []:
        try:
            os.remove(os.path.join(tokens, name))
            return True
        except FileNotFoundError:
            pass
    return False

claimed = False
held = []
while True:
    if claimed:
        held.append(bytearray(b"\\x01") * (8 << 20))
    else:
        claimed = take()
    time.sleep(0.05)
`;

function config(allocators: number): string {
  return `# written by test/system/oom.test.ts
metrics:
  listen: 127.0.0.1:0
log:
  level: info
programs:
  alloc:
    command: [${PY}, ${ALLOCATOR}]
    instances: ${allocators}
    protocol: off
    restart:
      backoff_initial: 500ms
  calm:
    command: [${PY}, ${SRC}/test/fixtures/workers/py_ok.py]
    protocol: on
`;
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== null && value !== undefined && value !== false) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
    await sleep(everyMs);
  }
}

/** `vigil_worker_restarts_total` as "program/reason" -> count. */
function restarts(metrics: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of metrics.matchAll(/^vigil_worker_restarts_total\{([^}]*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    counts.set(`${labels.program}/${labels.reason}`, Number(m[2]));
  }
  return counts;
}

/** The host's v1 memory cgroup folder of host process `pid` (found here, not by the code under test), or null. */
function hostMemoryCgroup(pid: number): string | null {
  const path = /^\d+:(?:[^:]*,)?memory(?:,[^:]*)?:(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, "utf8"))?.[1];
  const mount = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" "))
    .find((f) => f[f.length - 3] === "cgroup" && f[f.length - 1]!.split(",").includes("memory") && f[3] === "/");
  return path === undefined || mount === undefined ? null : `${mount[4]}${path === "/" ? "" : path}`;
}

/** How vigil.service got its memory limit, and how to take it away. */
interface MemoryLimit {
  how: string;
  /** vigild's memory cgroup as it sees it, or null where the drop-in sets it. */
  v1Cgroup: string | null;
  undo: () => Promise<void>;
}

describe("OOM kills under a real systemd (system tests)", function () {
  this.timeout(180_000);
  let c: Container | null = null;
  let limit: MemoryLimit | null = null;
  let cursor = "";

  const ct = (): Container => {
    if (!c) throw new Error("no container");
    return c;
  };

  /** Puts vigil.service under LIMIT_MIB, the way this machine allows. */
  async function limitVigil(): Promise<MemoryLimit> {
    const controllers = await ct().exec(["cat", "/sys/fs/cgroup/cgroup.controllers"]);
    if (controllers.code === 0 && controllers.stdout.split(/\s+/).includes("memory")) {
      // OOMPolicy=continue: systemd's default (stop) would stop vigil.service at a worker's OOM kill.
      await ct().writeFile(`${DROPIN_DIR}/memory.conf`, `[Service]\nMemoryMax=${LIMIT_MIB}M\nOOMPolicy=continue\n`);
      await ct().run(["systemctl", "daemon-reload"]);
      return { how: `cgroup v2: MemoryMax=${LIMIT_MIB}M in a drop-in`, v1Cgroup: null, undo: async () => undefined };
    }
    const memoryMount = await ct().run(["grep", " /sys/fs/cgroup/memory ", "/proc/self/mountinfo"]).catch(() => "");
    if (!/ - cgroup cgroup \S*\bmemory\b/.test(memoryMount)) throw new Error(`the container has no memory controller, v1 or v2:\n${controllers.stdout}${memoryMount}`);
    const leader = ct().leaderPid;
    const parent = hostMemoryCgroup(leader);
    if (parent === null) throw new Error(`no v1 memory cgroup on the host for the container's PID 1 (${leader})`);
    const name = `vigil-oom-${process.pid}`;
    const dir = join(parent, name);
    mkdirSync(dir);
    writeFileSync(join(dir, "memory.limit_in_bytes"), String(LIMIT_MIB << 20));
    writeFileSync(join(dir, "cgroup.procs"), String(leader));
    return {
      how: `cgroup v1 (the container's memory hierarchy is read-only): the container's PID 1 moved into ${dir}, memory.limit_in_bytes ${LIMIT_MIB} MiB`,
      v1Cgroup: `/${name}`,
      undo: async () => {
        writeFileSync(join(parent, "cgroup.procs"), String(leader));
        for (let i = 0; i < 20; i++) {
          try {
            rmdirSync(dir);
            return;
          } catch {
            await sleep(250);
          }
        }
      },
    };
  }

  before(async function () {
    this.timeout(420_000);
    const reason = unavailableReason();
    if (reason) {
      if (process.env.CI === "true") throw new Error(`the system tests must run under CI, but: ${reason}`);
      console.log(`    system tests skipped: ${reason}`);
      this.skip();
    }
    c = await start();
    console.log(`    container ${c.machine}: PID 1 ${c.leaderPid}, systemd-nspawn ${c.nspawnPid}`);
    await c.install();
    await c.writeFile(ALLOCATOR, ALLOCATOR_PY);
    limit = await limitVigil();
    console.log(`      memory limit: ${limit.how}`);
  });

  after(async function () {
    this.timeout(60_000);
    if (c) await c.exec(["systemctl", "stop", UNIT], { timeoutMs: 100_000 }).catch(() => undefined);
    await limit?.undo().catch(() => undefined);
    await c?.stop();
  });

  beforeEach(async function () {
    if (c) cursor = await c.cursor();
  });

  afterEach(async function () {
    if (!c) return;
    if (this.currentTest?.state === "failed") {
      const journal = await c.journal(UNIT, { afterCursor: cursor }).catch((err: Error) => `(no journal: ${err.message})`);
      const show = await c.exec(["systemctl", "show", "-p", "ActiveState,SubState,Result,MainPID,NRestarts", UNIT]);
      console.log(`\n----- journalctl -u ${UNIT} (this test) -----\n${journal}----- systemctl show -----\n${show.stdout}-----`);
    }
    await c.exec(["systemctl", "stop", UNIT], { timeoutMs: 100_000 });
    await c.sh(`systemctl reset-failed ${UNIT} 2>/dev/null; true`);
  });

  /** Starts vigil with `allocators` idle allocators (no tokens); the metrics URL and vigild's pid. */
  async function startVigil(allocators: number): Promise<{ metricsUrl: string; mainPid: number }> {
    await ct().run(["rm", "-rf", TOKENS]);
    await ct().writeFile(CONFIG, config(allocators));
    const started = await ct().exec(["systemctl", "start", UNIT], { timeoutMs: 100_000 });
    expect(started.code, started.stdout + started.stderr).to.equal(0);
    const journal = await until("vigild's metrics address", async () => /metrics on (http:\/\/\S+)/.exec(await ct().journal(UNIT, { afterCursor: cursor })), 10_000);
    const mainPid = Number((await ct().show(UNIT, ["MainPID"])).MainPID);
    if (limit?.v1Cgroup) {
      const cgroup = await ct().run(["cat", `/proc/${mainPid}/cgroup`]);
      expect(cgroup, "vigild is in the limited memory cgroup").to.match(new RegExp(`^\\d+:memory:${limit.v1Cgroup}$`, "m"));
    }
    await until("every allocator running", async () => (await ct().exec(["pgrep", "-fc", ALLOCATOR])).stdout.trim() === String(allocators), 20_000);
    return { metricsUrl: journal[1]!, mainPid };
  }

  async function scrape(url: string): Promise<Map<string, number>> {
    const response = await fetch(url);
    expect(response.status).to.equal(200);
    return restarts(await response.text());
  }

  /** Lets `n` allocators go: all the tokens appear at once (a rename of the folder). */
  async function unleash(n: number): Promise<void> {
    await ct().run(["sh", "-c", `rm -rf ${TOKENS} ${TOKENS}.new && mkdir ${TOKENS}.new && for i in $(seq ${n}); do touch ${TOKENS}.new/$i; done && mv ${TOKENS}.new ${TOKENS}`]);
  }

  it("a worker that allocates until the OOM killer kills it is restarted as oom; vigild and the worker beside it carry on", async () => {
    const { metricsUrl, mainPid } = await startVigil(1);
    const before = await scrape(metricsUrl);
    expect([...before.values()].reduce((a, b) => a + b, 0), "restarts before the test").to.equal(0);
    const calmBefore = (await ct().run(["pgrep", "-f", "py_ok.py"])).trim();

    await unleash(1);
    const after = await until(
      "alloc restarted as oom",
      async () => {
        const counts = await scrape(metricsUrl);
        return (counts.get("alloc/oom") ?? 0) >= 1 ? counts : null;
      },
      60_000,
    );
    expect(after.get("alloc/oom")).to.equal(1);
    expect(after.get("alloc/crash") ?? 0, "alloc restarts as crash").to.equal(0);
    for (const [key, n] of after) if (key.startsWith("calm/")) expect(n, key).to.equal(0);

    const journal = await ct().journal(UNIT, { afterCursor: cursor });
    expect(journal).to.match(/alloc\/0\[\d+\] killed by SIGKILL \(not by vigild: the OOM killer or kill -9\)/);
    expect(journal).to.match(/alloc\/0\[\d+\] restarting in \S+ \(oom\)/);
    expect(journal).to.not.match(/calm\/0\[\d+\] restarting/);

    const unit = await ct().show(UNIT, ["MainPID", "NRestarts", "ActiveState"]);
    expect(unit).to.deep.include({ MainPID: String(mainPid), NRestarts: "0", ActiveState: "active" });
    expect((await ct().run(["pgrep", "-f", "py_ok.py"])).trim(), "the calm worker's pid").to.equal(calmBefore);
  });

  it("the unit lowers vigild's OOM score and its workers run at the kernel's default, never below vigild", async () => {
    const { mainPid } = await startVigil(1);
    expect((await ct().show(UNIT, ["OOMScoreAdjust"])).OOMScoreAdjust).to.equal("-500");
    const score = async (pid: number | string) => Number((await ct().run(["cat", `/proc/${pid}/oom_score_adj`])).trim());
    // -500 where systemd may lower a score; 0 in a container without CAP_SYS_RESOURCE, where systemd ignores it.
    const own = await score(mainPid);
    expect([-500, 0], "vigild's oom_score_adj").to.include(own);
    const workers = (await ct().run(["pgrep", "-f", "py_ok.py|allocate.py"])).trim().split("\n");
    expect(workers, "the calm worker and the allocator").to.have.length(2);
    for (const pid of workers) expect(await score(pid), `worker ${pid}`).to.equal(0);
  });

  it("two workers OOM-killed in quick succession are both oom, and a kill -9 after that is a crash", async () => {
    const { metricsUrl, mainPid } = await startVigil(2);
    await unleash(2);
    const after = await until(
      "both allocators restarted",
      async () => {
        const counts = await scrape(metricsUrl);
        return (counts.get("alloc/oom") ?? 0) + (counts.get("alloc/crash") ?? 0) >= 2 ? counts : null;
      },
      60_000,
    );
    expect(after.get("alloc/oom"), "alloc restarts as oom").to.equal(2);
    expect(after.get("alloc/crash") ?? 0, "alloc restarts as crash").to.equal(0);
    const journal = await ct().journal(UNIT, { afterCursor: cursor });
    expect(journal).to.match(/alloc\/0\[\d+\] restarting in \S+ \(oom\)/);
    expect(journal).to.match(/alloc\/1\[\d+\] restarting in \S+ \(oom\)/);

    // A person's kill -9, with no OOM kill behind it, stays a crash.
    const idle = await until("an allocator running again", async () => (await ct().exec(["pgrep", "-f", ALLOCATOR])).stdout.trim().split("\n")[0], 20_000);
    await ct().run(["kill", "-9", idle]);
    const last = await until(
      "the killed allocator restarted",
      async () => {
        const counts = await scrape(metricsUrl);
        return (counts.get("alloc/crash") ?? 0) >= 1 ? counts : null;
      },
      30_000,
    );
    expect(last.get("alloc/oom"), "alloc restarts as oom").to.equal(2);
    expect(last.get("alloc/crash"), "alloc restarts as crash").to.equal(1);
    const unit = await ct().show(UNIT, ["MainPID", "NRestarts"]);
    expect(unit).to.deep.include({ MainPID: String(mainPid), NRestarts: "0" });
  });
});
