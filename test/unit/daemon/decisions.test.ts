// The daemon's decisions as plain functions: its lifecycle, its status line,
// the watchdog's health verdict, sd_notify rendering, bus choice, the
// TimeoutStopSec check.
import { expect } from "chai";
import { INITIAL_DAEMON_STATE, daemonStep, statusLine, type DaemonAction, type DaemonEvent, type DaemonState } from "../../../daemon/lifecycle.js";
import type { DaemonStateName } from "../../../daemon/core/vocabulary.js";
import { busCandidates } from "../../../daemon/dbus/choose.js";
import { renderState } from "../../../daemon/systemd/notify.js";
import { watchdogHealthy } from "../../../daemon/systemd/watchdog.js";
import { requiredStopMs, stopTimeoutFits } from "../../../daemon/systemd/stop-budget.js";
import type { ProgramConfig } from "../../../daemon/config/types.js";

describe("daemon decisions", () => {
  it("daemonStep: the lifecycle table", () => {
    const table: Array<[DaemonStateName, DaemonEvent, DaemonStateName, DaemonAction[]]> = [
      ["starting", "all-ready", "running", ["announce-ready"]],
      ["starting", "start-failed", "stopping", ["report-failed-start", "begin-stop"]],
      ["starting", "term", "stopping", ["begin-stop"]],
      ["starting", "hup", "starting", ["refuse-reload"]],
      ["running", "hup", "reloading", ["begin-reload"]],
      ["running", "all-ready", "running", []],
      ["running", "start-failed", "running", []],
      ["reloading", "reload-done", "running", ["announce-reloaded"]],
      ["reloading", "term", "stopping", ["begin-stop"]],
      ["stopping", "term", "forcing", ["force"]],
      ["stopping", "hup", "stopping", ["refuse-reload"]],
      ["forcing", "term", "forcing", []],
      ["stopping", "stopped", "stopped", ["finish"]],
      ["forcing", "stopped", "stopped", ["finish"]],
    ];
    for (const [name, event, next, actions] of table) {
      const step = daemonStep({ ...INITIAL_DAEMON_STATE, name }, event);
      expect({ next: step.next.name, actions: step.actions }, `${name} + ${event}`).to.deep.equal({ next, actions });
    }
  });

  it("daemonStep: SIGHUPs during a reload collapse into one more reload", () => {
    let s: DaemonState = { ...INITIAL_DAEMON_STATE, name: "reloading" };
    for (let i = 0; i < 3; i++) {
      const step = daemonStep(s, "hup");
      expect(step.actions).to.deep.equal([]);
      s = step.next;
    }
    const done = daemonStep(s, "reload-done");
    expect(done.next).to.include({ name: "reloading", reloadQueued: false });
    expect(done.actions).to.deep.equal(["announce-reloaded", "begin-reload"]);
    const again = daemonStep(done.next, "reload-done");
    expect(again.next.name).to.equal("running");
    expect(again.actions).to.deep.equal(["announce-reloaded"]);
  });

  it("daemonStep: a failed start keeps exit status 1 through the stop", () => {
    let s = daemonStep(INITIAL_DAEMON_STATE, "start-failed").next;
    s = daemonStep(s, "term").next;
    s = daemonStep(s, "stopped").next;
    expect(s).to.include({ name: "stopped", exitStatus: 1 });
    expect(daemonStep(daemonStep(INITIAL_DAEMON_STATE, "term").next, "stopped").next.exitStatus).to.equal(0);
  });

  it("statusLine says in one line what vigild is doing", () => {
    const base = { ready: 4, expected: 6, alive: 6, stopTotal: 6, failed: [] as string[], note: null };
    expect(statusLine({ ...base, state: "starting" })).to.equal("starting: 4 of 6 workers ready");
    expect(statusLine({ ...base, state: "running", ready: 6 })).to.equal("6 of 6 workers ready");
    expect(statusLine({ ...base, state: "running", failed: ["web"], note: "reload failed: x" })).to.equal(
      "4 of 6 workers ready; FAILED: web; reload failed: x",
    );
    expect(statusLine({ ...base, state: "stopping", alive: 2 })).to.equal("stopping: 2 of 6 workers left");
    expect(statusLine({ ...base, state: "forcing", alive: 1 })).to.equal("stopping: 1 of 6 workers left (forced)");
  });

  it("watchdogHealthy: lag and a wedged supervision both withhold the ping", () => {
    expect(watchdogHealthy({ tickLateMs: 10, supervisionOverdueMs: 0, maxLoopLagMs: 1000 })).to.deep.equal({ ok: true });
    expect(watchdogHealthy({ tickLateMs: 1500, supervisionOverdueMs: 0, maxLoopLagMs: 1000 }).ok).to.equal(false);
    const wedged = watchdogHealthy({ tickLateMs: 0, supervisionOverdueMs: 2000, maxLoopLagMs: 1000 });
    expect(wedged).to.deep.equal({ ok: false, why: "supervision has not run for 2000 ms past its deadline" });
  });

  it("renderState keeps STATUS= on one line", () => {
    expect(renderState({ READY: 1, STATUS: "a\nb" })).to.equal("READY=1\nSTATUS=a b");
  });

  it("busCandidates: auto prefers the system bus, falls back to a session bus, none is none", () => {
    expect(busCandidates("auto", {}, () => true)).to.deep.equal(["system"]);
    expect(busCandidates("auto", { DBUS_SESSION_BUS_ADDRESS: "unix:path=/x" }, () => false)).to.deep.equal(["session"]);
    expect(busCandidates("auto", {}, () => false)).to.deep.equal([]);
    expect(busCandidates("session", {}, () => true)).to.deep.equal(["session"]);
    expect(busCandidates("none", { DBUS_SESSION_BUS_ADDRESS: "x" }, () => true)).to.deep.equal([]);
  });

  it("stopTimeoutFits: the longest stop, the wait for an unkillable worker and margin must fit in TimeoutStopUSec", () => {
    const programs = [
      { shutdown: { timeoutMs: 5000 }, stackDumpGraceMs: 250 },
      { shutdown: { timeoutMs: 20_000 }, stackDumpGraceMs: 250 },
    ] as unknown as ProgramConfig[];
    expect(requiredStopMs(programs)).to.equal(20_250 + 5000 + 5000);
    expect(stopTimeoutFits(90_000_000n, programs)).to.deep.equal({ ok: true });
    expect(stopTimeoutFits(10_000_000n, programs)).to.deep.equal({ ok: false, unitMs: 10_000, requiredMs: 30_250 });
    expect(stopTimeoutFits(0xffffffffffffffffn, programs)).to.deep.equal({ ok: true });
  });
});
