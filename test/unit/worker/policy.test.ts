import { expect } from "chai";
import { initialState, type WorkerState } from "../../../daemon/worker/lifecycle.js";
import { nextRestartDelay, ranWell, restartLimitHit, shouldRestart, unexpectedEndReason } from "../../../daemon/worker/policy.js";
import { decideAfterEnd } from "../../../daemon/supervisor/program-lifecycle.js";
import type { ProgramConfig } from "../../../daemon/config/types.js";

function ended(exit: WorkerState["exit"], readyAt: number | null = 0, exitedAt = 100): WorkerState {
  const base = initialState(0, { protocol: "on", readyTimeoutMs: 1, stackDumpGraceMs: 1, handlersTimeoutMs: 1, teardownHangAfterMs: 1, timeoutMs: 1, signal: "SIGTERM" }).next;
  return { ...base, phase: "exited", exit, t: { ...base.t, readyAt, exitedAt } };
}

const program = {
  restart: { policy: "always", backoffInitialMs: 100, backoffMaxMs: 1000, limit: { count: 3, windowMs: 10_000 } },
} as unknown as ProgramConfig;

describe("restart policy", () => {
  it("backoff doubles from initial and stops at max", () => {
    const cfg = { backoffInitialMs: 100, backoffMaxMs: 1000 };
    expect([1, 2, 3, 4, 5, 60].map((n) => nextRestartDelay(n, cfg))).to.deep.equal([100, 200, 400, 800, 1000, 1000]);
    expect(nextRestartDelay(3, { backoffInitialMs: 0, backoffMaxMs: 1000 })).to.equal(0);
  });

  it("names the end: exit 0 is exit, anything else a crash, a fault a hang", () => {
    expect(unexpectedEndReason(ended({ code: 0, signal: null, error: null }))).to.equal("exit");
    expect(unexpectedEndReason(ended({ code: 3, signal: null, error: null }))).to.equal("crash");
    expect(unexpectedEndReason(ended({ code: null, signal: "SIGSEGV", error: null }))).to.equal("crash");
    expect(unexpectedEndReason(ended({ code: null, signal: null, error: "spawn python9 ENOENT" }))).to.equal("crash");
    expect(unexpectedEndReason({ ...ended({ code: null, signal: "SIGKILL", error: null }), fault: "heartbeat" })).to.equal("hang");
  });

  it("on-failure leaves a clean exit alone; never restarts nothing", () => {
    expect(shouldRestart("on-failure", "exit")).to.equal(false);
    expect(shouldRestart("on-failure", "crash")).to.equal(true);
    expect(shouldRestart("never", "hang")).to.equal(false);
    expect(shouldRestart("always", "exit")).to.equal(true);
  });

  it("the restart limit counts restarts inside the window only", () => {
    const limit = { count: 3, windowMs: 10_000 };
    expect(restartLimitHit([1000, 2000], 3000, limit)).to.equal(false);
    expect(restartLimitHit([1000, 2000, 2500], 3000, limit)).to.equal(true);
    expect(restartLimitHit([1000, 2000, 2500], 11_500, limit)).to.equal(false);
  });

  it("a worker that stayed up longer than backoff_max resets the backoff", () => {
    expect(ranWell(ended({ code: 1, signal: null, error: null }, 0, 999), 1000)).to.equal(false);
    expect(ranWell(ended({ code: 1, signal: null, error: null }, 0, 1000), 1000)).to.equal(true);
    expect(ranWell(ended({ code: 1, signal: null, error: null }, null, 5000), 1000)).to.equal(false);
    const crash = ended({ code: 1, signal: null, error: null }, 0, 5000);
    expect(decideAfterEnd(crash, program, [], 4, 5000)).to.deep.equal({ action: "restart", reason: "crash", delayMs: 100, failures: 1 });
    const quick = ended({ code: 1, signal: null, error: null }, 0, 10);
    expect(decideAfterEnd(quick, program, [], 4, 5000)).to.deep.equal({ action: "restart", reason: "crash", delayMs: 1000, failures: 5 });
  });

  it("one restart too many fails the program", () => {
    const crash = ended({ code: 1, signal: null, error: null });
    expect(decideAfterEnd(crash, program, [100, 200, 300], 3, 400)).to.deep.equal({
      action: "fail",
      reason: "crash",
      restarts: 4,
      why: "4 restarts within 10s",
    });
  });

  it("a command that cannot be executed fails the program at once", () => {
    const enoent = ended({ code: null, signal: null, error: "spawn /nope ENOENT" });
    expect(decideAfterEnd(enoent, program, [], 0, 0)).to.deep.include({ action: "fail", why: "cannot start: spawn /nope ENOENT" });
  });
});
