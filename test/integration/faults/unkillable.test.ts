// A worker that SIGKILL cannot end: a real Python worker frozen by the cgroup
// v1 freezer (uninterruptible sleep, as on a dead NFS or FUSE mount). vigild
// must stop waiting for it UNKILLABLE_AFTER_MS after the SIGKILL: a stop of
// vigild completes and exits 0, a replacement goes on. Every process started
// here is thawed and seen gone at the end.
import { expect } from "chai";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { UNKILLABLE_AFTER_MS } from "../../../daemon/worker/lifecycle.js";
import { ENV } from "../../../lib/protocol/index.js";
import type { LastShutdownReport } from "../../../daemon/shutdown/report.js";
import { REPO, Vigild, isAlive, py, stopAll, waitDead, type LogEntry } from "../../helpers/vigild.js";
import { PrivateBus } from "../../helpers/private-bus.js";
import { Freezer, environOf, freezerUnavailable, procState } from "../../helpers/freezer.js";

const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);
const readyOf = (program: string) => (e: LogEntry) => e.program === program && / ready after /.test(e.msg);
const VIGILCTL = join(REPO, "dist/daemon/ctl/main.js");
/** vigild's own exit after its stop: a frozen child's pipes keep the loop alive until main's 2 s fallback. */
const EXIT_SLACK_MS = 2000;
/** Room for a loaded 2-core machine. */
const MARGIN_MS = 2500;

describe("a worker that SIGKILL cannot end (frozen cgroup, state D)", function () {
  this.timeout(90_000);
  let freezer: Freezer | null = null;
  const started: Vigild[] = [];

  before(function () {
    const reason = freezerUnavailable();
    if (reason) {
      if (process.env.CI === "true") throw new Error(`the unkillable-worker tests must run under CI, but: ${reason}`);
      console.log(`    !!! unkillable-worker tests NOT RUN: ${reason}`);
      this.skip();
    }
  });

  beforeEach(() => {
    freezer = Freezer.create("worker");
  });

  afterEach(async function () {
    this.timeout(30_000);
    const cgroup = freezer;
    freezer = null;
    const pids = started.flatMap((v) => [...v.workerPids]);
    started.length = 0;
    try {
      // Thawed first: a frozen process holds its SIGKILL, so nothing else could end it.
      await cgroup?.thaw();
      await stopAll();
      for (const pid of pids) expect(await waitDead(pid, 5000), `worker ${pid} still alive`).to.equal(true);
      // A thread group leaves the cgroup when its last thread is gone, a moment after its leader shows Z.
      const until = Date.now() + 5000;
      while ((cgroup?.pids().length ?? 0) > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      const left = (cgroup?.pids() ?? []).map((pid) => `${pid} ${procState(pid) ?? "gone"}`);
      expect(left, "processes left in the freezer cgroup").to.deep.equal([]);
    } finally {
      cgroup?.remove();
    }
  });

  function vigild(programs: Record<string, unknown>, extra: Record<string, unknown> = {}, env: Record<string, string> = {}): Vigild {
    const v = new Vigild({ programs, ...extra }, { env });
    started.push(v);
    return v;
  }

  async function freeze(pid: number): Promise<void> {
    freezer!.add(pid);
    await freezer!.freeze();
    expect(procState(pid)).to.equal("D");
  }

  it("a stop of vigild gives up on it UNKILLABLE_AFTER_MS after SIGKILL, exits 0, logs and reports it unkillable", async () => {
    const v = vigild({
      web: { command: py("py_ok.py"), protocol: "on", heartbeat_timeout: "60s", shutdown: { handlers_timeout: "500ms", teardown_hang_after: "500ms", timeout: "1s" } },
      ok: { command: py("py_ok.py", "--handler"), protocol: "on" },
    });
    const web = await v.waitFor(readyOf("web"), 20_000);
    await v.waitFor(readyOf("ok"), 20_000);
    const pid = web.pid as number;
    await freeze(pid);

    const t0 = Date.now();
    v.signal("SIGTERM");
    const { code } = await v.waitExit(30_000);
    const stopMs = Date.now() - t0;
    expect(code, v.tail(40)).to.equal(0);
    // SIGKILL at timeout (1 s), then the final wait; vigild did wait it out, and no longer.
    expect(stopMs).to.be.within(1000 + UNKILLABLE_AFTER_MS, 1000 + UNKILLABLE_AFTER_MS + EXIT_SLACK_MS + MARGIN_MS);
    // vigild is gone and the worker is not: vigild did not wait for it.
    expect(isAlive(pid)).to.equal(true);
    expect(procState(pid)).to.equal("D");

    const unkillable = v.logs.find(isMsg(/ unkillable: /))!;
    expect(unkillable, v.tail(40)).to.not.equal(undefined);
    expect(unkillable).to.include({ level: "error", program: "web", pid, proc_state: "D" });
    // Where the kernel holds it (__refrigerator, or the sleep it was frozen in): which one depends on the kernel.
    expect(unkillable.wchan).to.be.a("string");
    expect(unkillable.after_ms as number).to.be.within(UNKILLABLE_AFTER_MS, UNKILLABLE_AFTER_MS + 500);
    expect(unkillable.msg).to.match(/no longer waiting for it: its slot is released/);

    const exit = v.logs.find((e) => e.program === "web" && typeof e.outcome === "string")!;
    expect(exit).to.include({ outcome: "unkillable", code: null, signal: null });
    expect(v.logs.find((e) => e.program === "ok" && typeof e.outcome === "string")!.outcome).to.equal("clean");
    expect(v.logs.some(isMsg(new RegExp(`^stopped 2 workers in \\d+\\.\\d\\d s: 1 clean, 1 unkillable \\(handlers hang: web/0, unkillable: web/0 pid ${pid}\\)$`)))).to.equal(
      true,
    );

    const report = JSON.parse(readFileSync(join(v.dir, "state", "last-shutdown.json"), "utf8")) as LastShutdownReport;
    expect(report.outcomes).to.deep.equal({ clean: 1, skipped: 0, forced: 0, unkillable: 1 });
    const record = report.workers.find((w) => w.program === "web")!;
    expect(record).to.include({ outcome: "unkillable", pid, exit_code: null, exit_signal: null, hang: "handlers" });
    expect(record.killed_ms).to.be.within(1000, 1000 + MARGIN_MS);
    expect(record.exited_ms - record.killed_ms!).to.be.within(UNKILLABLE_AFTER_MS, UNKILLABLE_AFTER_MS + 500);

    // Thawed, the SIGKILL it has held all along takes effect.
    await freezer!.thaw();
    expect(await waitDead(pid, 5000)).to.equal(true);
  });

  it("a hung worker that SIGKILL cannot end is replaced, on a heartbeat slot of its own, and reported gone once thawed", async () => {
    const v = vigild({
      web: {
        command: py("py_ok.py"),
        protocol: "on",
        heartbeat_timeout: "1s",
        stack_dump_grace: "250ms",
        restart: { backoff_initial: "100ms", backoff_max: "1s" },
      },
    });
    const first = await v.waitFor(readyOf("web"), 20_000);
    const oldPid = first.pid as number;
    const oldSlot = environOf(oldPid, ENV.heartbeatSlot);
    expect(oldSlot).to.be.a("string");
    await freeze(oldPid);
    const frozenAt = Date.now();

    // Missed heartbeat (1 s, maybe once more if the host looks starved), grace, SIGKILL, final wait, backoff, ready.
    const second = await v.waitFor((e) => readyOf("web")(e) && e.pid !== oldPid, 1000 + 1000 + 250 + UNKILLABLE_AFTER_MS + 100 + 10_000);
    expect(Date.now() - frozenAt).to.be.at.least(1000 + 250 + UNKILLABLE_AFTER_MS);
    const newPid = second.pid as number;
    expect(v.logs.find(isMsg(/ unkillable: /))).to.include({ level: "error", pid: oldPid });
    expect(v.logs.some((e) => e.pid === oldPid && e.reason === "hang" && /restarting in /.test(e.msg))).to.equal(true);
    expect(await v.metric("vigil_worker_unkillable_total", { program: "web" })).to.equal(1);
    // Both exist now: the old one could still write a beat, so its slot is not handed on.
    expect(procState(oldPid)).to.equal("D");
    expect(environOf(newPid, ENV.heartbeatSlot)).to.not.equal(oldSlot);

    await freezer!.thaw();
    const gone = await v.waitFor((e) => e.pid === oldPid && / is gone /.test(e.msg), 5000);
    expect(gone).to.include({ level: "info", signal: "SIGKILL" });
    expect(await waitDead(oldPid, 5000)).to.equal(true);
    // The replacement was never disturbed: it stays ready through a clean stop.
    v.signal("SIGTERM");
    expect((await v.waitExit(15_000)).code).to.equal(0);
    expect(v.logs.find((e) => e.pid === newPid && typeof e.outcome === "string")!.outcome).to.equal("clean");
  });

  describe("vigilctl restart", () => {
    let bus: PrivateBus | null = null;
    afterEach(async () => {
      await bus?.stop();
      bus = null;
    });

    it("returns once the old worker is given up on, not never", async () => {
      bus = await PrivateBus.start();
      const v = vigild(
        { web: { command: py("py_ok.py", "--handler"), protocol: "on", heartbeat_timeout: "60s", shutdown: { handlers_timeout: "500ms", teardown_hang_after: "500ms", timeout: "1s" } } },
        { dbus: { bus: "session" } },
        { DBUS_SESSION_BUS_ADDRESS: bus.address },
      );
      await v.waitFor(isMsg(/D-Bus: serving/), 20_000);
      const old = await v.waitFor(readyOf("web"), 20_000);
      const oldPid = old.pid as number;
      await freeze(oldPid);

      const t0 = Date.now();
      const ctl = spawn(process.execPath, [VIGILCTL, "--bus", "session", "restart", "web"], {
        env: { PATH: process.env.PATH, DBUS_SESSION_BUS_ADDRESS: bus.address },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      ctl.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      const code = await new Promise<number | null>((resolve) => ctl.once("exit", (c) => resolve(c)));
      const tookMs = Date.now() - t0;
      expect(code, stderr).to.equal(0);
      // The new worker's start, the old one's timeout (1 s), then the final wait.
      expect(tookMs).to.be.within(1000 + UNKILLABLE_AFTER_MS, 1000 + UNKILLABLE_AFTER_MS + 5000 + MARGIN_MS);
      expect(v.logs.find((e) => e.pid === oldPid && typeof e.outcome === "string")).to.include({ outcome: "unkillable" });
      expect(procState(oldPid)).to.equal("D");
      expect(v.logs.some((e) => readyOf("web")(e) && e.pid !== oldPid)).to.equal(true);
    });
  });
});
