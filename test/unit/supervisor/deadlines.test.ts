// Every deadline of a worker's life, exact to the millisecond on the fake
// clock, through the real Worker and Program edges: heartbeat and ready
// timeouts, the stop's phases, the skip grace, and a stop of many workers.
// The integration tier checks the same with real processes, within bounds
// that hold on a loaded machine.
import { expect } from "chai";
import { writeSync } from "node:fs";
import { HEARTBEAT_SLOT_BYTES } from "../../../lib/protocol/index.js";
import { SKIP_GRACE_MS } from "../../../daemon/worker/lifecycle.js";
import { eventsOf, program, rig, type Rig } from "../../helpers/fake-supervision.js";

const protocolProgram = (extra: string): string => `programs:
  app:
    command: [/bin/app]
    protocol: "on"
${extra}`;

/** The time of the first event of `type` since `from`. */
function when(r: Rig, type: string, times: Map<object, number>, from = 0): number | null {
  const event = r.events.find((e) => e.type === type && (times.get(e) ?? -1) >= from);
  return event ? times.get(event)! : null;
}

/** Records when each event was emitted, by the fake clock. */
function timed(r: Rig): Map<object, number> {
  const times = new Map<object, number>();
  const push = r.events.push.bind(r.events);
  r.events.push = (...items) => {
    for (const item of items) times.set(item, r.clock.now());
    return push(...items);
  };
  return times;
}

function beat(r: Rig, slot: number, at: number): void {
  const buffer = Buffer.alloc(HEARTBEAT_SLOT_BYTES);
  buffer.writeBigUInt64LE(BigInt(Math.round(at * 1e6)));  // nanoseconds on CLOCK_MONOTONIC, as clients write them
  writeSync(r.edges.heartbeat.file.fd, buffer, 0, buffer.length, slot * HEARTBEAT_SLOT_BYTES);
}

describe("worker deadlines on a fake clock", () => {
  it("a worker that stops beating is a running hang exactly heartbeat_timeout after its last beat", () => {
    const r = rig();
    const times = timed(r);
    const p = program(r, protocolProgram(`    heartbeat_timeout: 1s\n    stack_dump_grace: 250ms`));
    p.start();
    r.clock.advance(0);
    const [w] = p.workers();
    const slot = w!.heartbeatSlot!;
    const readyAt = r.clock.now();
    // Beats every 250 ms for 2 s, then silence.
    for (let t = 250; t <= 2000; t += 250) {
      r.clock.advance(250);
      beat(r, slot, r.clock.now());
    }
    const last = readyAt + 2000;
    r.clock.advance(999);
    expect(eventsOf(r, "worker-hang")).to.have.length(0);
    r.clock.advance(1);
    expect(eventsOf(r, "worker-hang").map((e) => [e.phase, e.afterMs])).to.deep.equal([["running", 1000]]);
    expect(when(r, "worker-hang", times)).to.equal(last + 1000);
    // The stack-dump grace, then SIGKILL, then a replacement.
    const proc = r.host.processes[0]!;
    expect(proc.signals).to.deep.equal(["SIGUSR2", "SIGCONT"]);
    r.clock.advance(249);
    expect(proc.signals).to.not.include("SIGKILL");
    r.clock.advance(1);
    expect(proc.signals).to.include("SIGKILL");
    r.clock.advance(0);
    expect(eventsOf(r, "worker-restart-scheduled").map((e) => e.reason)).to.deep.equal(["hang"]);
  });

  it("a worker that never says ready is killed exactly at ready_timeout and restarted", () => {
    const r = rig();
    r.host.behaviours.set("app", { ready: false, handlersMs: 0 });
    const times = timed(r);
    const p = program(r, protocolProgram(`    ready_timeout: 500ms\n    heartbeat_timeout: 0\n    stack_dump_grace: 0`));
    p.start();
    const start = r.clock.now();
    r.clock.advance(499);
    expect(eventsOf(r, "worker-not-ready")).to.have.length(0);
    r.clock.advance(1);
    expect(eventsOf(r, "worker-not-ready").map((e) => e.afterMs)).to.deep.equal([500]);
    expect(when(r, "worker-not-ready", times)).to.equal(start + 500);
    expect(r.host.processes[0]!.signals).to.deep.equal(["SIGKILL"]);
  });

  it("destroy with a teardown that never ends: hang at teardown_hang_after, SIGKILL at timeout, forced", () => {
    const r = rig();
    r.host.behaviours.set("app", { ready: true, handlersMs: null });
    const times = timed(r);
    const p = program(r, protocolProgram(`    heartbeat_timeout: 0\n    shutdown: { handlers_timeout: 2s, teardown_hang_after: 1s, timeout: 3s }`));
    p.start();
    r.clock.advance(0);
    const proc = r.host.processes[0]!;
    const stopAt = r.clock.now();
    void p.stop("stop");
    r.clock.advance(200);
    proc.say({ type: "handlers-done", timedOut: false });
    proc.say({ type: "teardown" });
    r.clock.advance(999);
    expect(eventsOf(r, "worker-hang")).to.have.length(0);
    r.clock.advance(1);
    expect(eventsOf(r, "worker-hang").map((e) => [e.phase, e.afterMs])).to.deep.equal([["teardown", 1000]]);
    r.clock.advance(3000 - 1200 - 1);
    expect(proc.signals).to.not.include("SIGKILL");
    r.clock.advance(1);
    expect(proc.signals).to.include("SIGKILL");
    expect(r.clock.now() - stopAt).to.equal(3000);
    r.clock.advance(0);
    const [exit] = eventsOf(r, "worker-exited");
    expect(exit!.outcome).to.equal("forced");
    expect(exit!.durations).to.deep.equal({ totalMs: 3000, handlersMs: 200, teardownMs: 2800 });
    expect(times.get(exit!)).to.equal(stopAt + 3000);
  });

  it("skip: a worker still there after its handlers is killed SKIP_GRACE_MS later, outcome skipped", () => {
    const r = rig();
    r.host.behaviours.set("app", { ready: true, handlersMs: null });
    const p = program(r, protocolProgram(`    heartbeat_timeout: 0\n    shutdown: { teardown: skip, handlers_timeout: 2s, timeout: 3s }`));
    p.start();
    r.clock.advance(0);
    const proc = r.host.processes[0]!;
    void p.stop("stop");
    r.clock.advance(300);
    proc.say({ type: "handlers-done", timedOut: false });
    r.clock.advance(SKIP_GRACE_MS - 1);
    expect(proc.signals).to.not.include("SIGKILL");
    r.clock.advance(1);
    expect(proc.signals).to.include("SIGKILL");
    r.clock.advance(0);
    const [exit] = eventsOf(r, "worker-exited");
    expect(exit!.outcome).to.equal("skipped");
    expect(exit!.durations.totalMs).to.equal(300 + SKIP_GRACE_MS);
  });

  it("a plain worker that ignores its signal: signal hang at handlers_timeout, killed at timeout", () => {
    const r = rig();
    r.host.behaviours.set("app", { ignoreTerm: true });
    const p = program(r, `programs:\n  app:\n    command: [/bin/app]\n    protocol: "off"\n    shutdown: { handlers_timeout: 1s, timeout: 2s }\n`);
    p.start();
    r.clock.advance(0);
    const proc = r.host.processes[0]!;
    void p.stop("stop");
    r.clock.advance(0);
    expect(proc.signals).to.deep.equal(["SIGTERM"]);
    r.clock.advance(1000);
    expect(eventsOf(r, "worker-hang").map((e) => [e.phase, e.afterMs])).to.deep.equal([["signal", 1000]]);
    r.clock.advance(999);
    expect(proc.signals).to.deep.equal(["SIGTERM"]);
    r.clock.advance(1);
    expect(proc.signals).to.deep.equal(["SIGTERM", "SIGKILL"]);
    r.clock.advance(0);
    expect(eventsOf(r, "worker-exited")[0]!.durations.totalMs).to.equal(2000);
  });

  it("50 workers, half hanging in teardown: every one is gone exactly at the timeout of the stop", async () => {
    const r = rig();
    const p = program(r, protocolProgram(`    instances: 50\n    heartbeat_timeout: 0\n    shutdown: { handlers_timeout: 1s, teardown_hang_after: 500ms, timeout: 2s }`));
    p.start();
    r.clock.advance(0);
    const stopAt = r.clock.now();
    r.host.processes.forEach((proc, i) => {
      if (i % 2 === 0) proc.behaviour.handlersMs = null;
    });
    let done = false;
    const stopped = p.stop("stop", stopAt).then(() => (done = true));
    r.clock.advance(0);
    for (const proc of r.host.processes.filter((_, i) => i % 2 === 0)) proc.say({ type: "handlers-done", timedOut: false });
    r.clock.advance(1999);
    await Promise.resolve();
    expect(done).to.equal(false);
    expect(r.host.live()).to.have.length(25);
    r.clock.advance(1);
    await stopped;
    const outcomes = eventsOf(r, "worker-exited").map((e) => e.outcome);
    expect(outcomes.filter((o) => o === "forced")).to.have.length(25);
    expect(outcomes.filter((o) => o === "clean")).to.have.length(25);
    expect(Math.max(...eventsOf(r, "worker-exited").map((e) => e.durations.totalMs!))).to.equal(2000);
  });
});
