// What vigild tells systemd, read off a real AF_UNIX datagram socket at
// NOTIFY_SOCKET: readiness, status, stop, reload, start failure, watchdog.
// (The same behaviours under a real systemd are in test/system/.)
import { expect } from "chai";
import { readFileSync, writeFileSync } from "node:fs";
import { NotifyReceiver } from "../../helpers/notify.js";
import { Vigild, py, stopAll, type LogEntry } from "../../helpers/vigild.js";

const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);

describe("sd_notify (a real notification socket)", function () {
  this.timeout(60_000);
  let notify: NotifyReceiver;
  beforeEach(async () => {
    notify = await NotifyReceiver.start();
  });
  afterEach(async () => {
    await stopAll();
    notify.close();
  });

  it("READY=1 once every instance is ready, STATUS says so, then STOPPING=1 with EXTEND_TIMEOUT_USEC", async () => {
    const v = new Vigild(
      {
        programs: {
          web: { command: py("py_ok.py"), protocol: "on", instances: 2, shutdown: { timeout: "7s" } },
          plain: { command: ["sleep", "1000"] },
        },
      },
      { env: { NOTIFY_SOCKET: notify.path } },
    );
    const ready = await notify.waitFor((m) => m.READY === "1");
    expect(ready.STATUS).to.equal("3 of 3 workers ready");
    expect(v.logs.filter(isMsg(/^web\/\d.* ready after/))).to.have.length(2);
    const starting = notify.messages.filter((m) => m.STATUS?.startsWith("starting:"));
    expect(starting.length).to.be.at.least(1);
    // Progress during start extends systemd's start timeout by the slowest ready_timeout (30 s) plus slack.
    expect(starting.every((m) => m.EXTEND_TIMEOUT_USEC === String((30_000 + 5000) * 1000))).to.equal(true);
    v.signal("SIGTERM");
    const stopping = await notify.waitFor((m) => m.STOPPING === "1");
    // The longest stop (7 s + stack dump grace 250 ms), the wait for an
    // unkillable worker (5 s) plus slack: systemd must wait for vigild's own deadlines.
    expect(Number(stopping.EXTEND_TIMEOUT_USEC)).to.equal((7000 + 250 + 5000 + 5000) * 1000);
    expect(stopping.STATUS).to.match(/^stopping: 3 of 3 workers left/);
    await v.waitExit();
    expect(notify.messages.at(-1)!.STATUS).to.match(/^stopped 3 workers in \d\.\d\d s: 3 clean$/);
  });

  it("reload: RELOADING=1 with MONOTONIC_USEC, a changed program replaced rolling, a new one started, a removed one stopped, READY=1", async () => {
    const v = new Vigild(
      {
        programs: {
          keep: { command: py("py_ok.py"), protocol: "on" },
          change: { command: py("py_ok.py"), protocol: "on", env: { V: "1" } },
          drop: { command: ["sleep", "1000"] },
        },
      },
      { env: { NOTIFY_SOCKET: notify.path } },
    );
    await notify.waitFor((m) => m.READY === "1");
    const pidOf = (program: string): number =>
      v.logs.filter((e) => e.program === program && / spawned$/.test(e.msg)).map((e) => e.pid as number).at(-1)!;
    const [keep, change, drop] = [pidOf("keep"), pidOf("change"), pidOf("drop")];
    const text = readFileSync(v.configPath, "utf8")
      .replace('V: "1"', 'V: "2"')
      .replace(/ {2}drop:\n(?: {4}.*\n)+/, `  added:\n    command: [sleep, "1000"]\n`);
    writeFileSync(v.configPath, text);
    const before = notify.messages.length;
    const t0 = process.hrtime.bigint();
    v.signal("SIGHUP");
    const reloading = await notify.waitFor((m) => m.RELOADING === "1");
    // MONOTONIC_USEC is CLOCK_MONOTONIC, the clock of process.hrtime.
    const usec = BigInt(reloading.MONOTONIC_USEC!);
    expect(Number(usec - t0 / 1000n)).to.be.within(0, 2_000_000);
    await notify.waitFor((m) => notify.messages.indexOf(m) > before && m.READY === "1", 15_000, "READY=1 after the reload");
    const newChange = pidOf("change");
    expect(newChange).to.not.equal(change);
    // Rolling: the new worker said ready before the old one was asked to stop.
    const newReady = v.logs.findIndex((e) => e.pid === newChange && / ready after /.test(e.msg));
    const oldStop = v.logs.findIndex((e) => e.pid === change && e.outcome === "clean");
    expect(newReady).to.be.greaterThan(-1);
    expect(oldStop).to.be.greaterThan(newReady);
    expect(v.logs[oldStop]!.msg).to.match(/stopped clean/);
    expect(v.logs.some((e) => e.pid === drop && e.outcome !== undefined)).to.equal(true);
    expect(pidOf("keep")).to.equal(keep);
    expect(v.logs.some((e) => e.program === "added" && / spawned$/.test(e.msg))).to.equal(true);
    expect(await v.metric("vigil_workers", { program: "drop", state: "running" })).to.satisfy(Number.isNaN);
    expect(await v.metric("vigil_worker_restarts_total", { program: "change", reason: "reload" })).to.equal(1);
  });

  it("a reload with a broken file keeps the running configuration and says so in STATUS", async () => {
    const v = new Vigild({ programs: { web: { command: py("py_ok.py"), protocol: "on" } } }, { env: { NOTIFY_SOCKET: notify.path } });
    await notify.waitFor((m) => m.READY === "1");
    const pid = v.logs.find(isMsg(/^web\/0.* spawned$/))!.pid;
    writeFileSync(v.configPath, `${readFileSync(v.configPath, "utf8")}\nbogus_key: 1\n`);
    v.signal("SIGHUP");
    const error = await v.waitFor(isMsg(/bogus_key: unknown key/));
    expect(error.msg).to.match(new RegExp(`^${v.configPath}:\\d+: bogus_key: unknown key`));
    const status = await notify.waitFor((m) => m.STATUS?.startsWith("1 of 1 workers ready; reload failed:") === true);
    expect(status.STATUS).to.contain("running the previous configuration");
    expect(notify.messages.filter((m) => m.READY === "1")).to.have.length(2);
    expect(v.logs.filter(isMsg(/ spawned$/)).map((e) => e.pid)).to.deep.equal([pid]);
  });

  it("a program that FAILS during start fails vigild's start: STATUS names it, ERRNO is set, exit status 1, no READY", async () => {
    const v = new Vigild(
      {
        programs: {
          crashy: { command: py("py_crash.py"), protocol: "on", restart: { backoff_initial: "50ms", limit: "2 in 60s" } },
          fine: { command: ["sleep", "1000"] },
        },
      },
      { env: { NOTIFY_SOCKET: notify.path } },
    );
    const { code } = await v.waitExit(20_000);
    expect(code).to.equal(1);
    const failed = notify.messages.find((m) => m.ERRNO !== undefined)!;
    expect(failed.STATUS).to.match(/^start failed: program crashy FAILED/);
    expect(notify.messages.some((m) => m.READY === "1")).to.equal(false);
  });

  it("pings WATCHDOG=1 at half the interval, and not while its event loop was stalled", async () => {
    const v = new Vigild(
      { watchdog: { max_loop_lag: "200ms" }, programs: { plain: { command: ["sleep", "1000"] } } },
      { env: { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: "400000" } },
    );
    await notify.waitFor((m) => m.READY === "1");
    await new Promise((r) => setTimeout(r, 1100));
    const early = notify.messages.filter((m) => m.WATCHDOG === "1").length;
    expect(early).to.be.within(4, 7);
    // A stopped vigild sends nothing; the first tick after is far too late and is not a ping.
    process.kill(v.pid, "SIGSTOP");
    await new Promise((r) => setTimeout(r, 800));
    const during = notify.messages.filter((m) => m.WATCHDOG === "1").length;
    // Asked while vigild is stopped: answered after the late tick has run (timers come before the new connection is read).
    const stalledLag = v.metric("vigil_event_loop_lag_seconds");
    await new Promise((r) => setTimeout(r, 50));
    process.kill(v.pid, "SIGCONT");
    const skipped = await v.waitFor(isMsg(/not pinging the systemd watchdog: event loop lagged/));
    expect(skipped.level).to.equal("warn");
    const resumed = await notify.waitFor((m) => m.WATCHDOG === "1" && notify.messages.indexOf(m) >= during + 1, 3000, "pings after the stall");
    // One more, so that a tick after the stall has surely been on time (a ping is sent only then).
    await notify.waitFor((m) => m.WATCHDOG === "1" && notify.messages.indexOf(m) > notify.messages.indexOf(resumed), 3000, "a second ping after the stall");
    expect(await v.metric("vigil_watchdog_pings_total")).to.be.at.least(early);
    // The stall shows in the lag reading; a later, healthy tick reads far less.
    const stalled = await stalledLag;
    expect(stalled, "lag read just after the stall (s)").to.be.within(0.4, 5);
    const lagAfter = await v.metric("vigil_event_loop_lag_seconds");
    expect(lagAfter, "lag read after the pings resumed (s)").to.be.at.least(0).and.below(stalled / 2);
  });
});
