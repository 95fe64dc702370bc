// The worker lifecycle as a pure function: every transition that matters,
// with time passed in by hand.
import { expect } from "chai";
import {
  SKIP_GRACE_MS,
  UNKILLABLE_AFTER_MS,
  initialState,
  step,
  type LifecycleConfig,
  type WorkerEffect,
  type WorkerEvent,
  type WorkerState,
} from "../../../daemon/worker/lifecycle.js";
import { classifyShutdown, shutdownDurations } from "../../../daemon/worker/policy.js";

const cfg: LifecycleConfig = {
  protocol: "on",
  readyTimeoutMs: 1000,
  stackDumpGraceMs: 250,
  handlersTimeoutMs: 2000,
  teardownHangAfterMs: 1000,
  timeoutMs: 5000,
  signal: "SIGTERM",
};

/** Runs events at given times; returns the final state and every effect in order. */
function run(events: Array<[number, WorkerEvent]>, c: LifecycleConfig = cfg): { state: WorkerState; effects: WorkerEffect[] } {
  let { next: state, effects } = initialState(0, c);
  const all = [...effects];
  for (const [at, event] of events) {
    const out = step(state, event, at, c);
    state = out.next;
    all.push(...out.effects);
  }
  return { state, effects: all };
}

const ready: WorkerEvent = { type: "message", message: { type: "ready" } };
const hello: WorkerEvent = { type: "message", message: { type: "hello", client: "python", version: "0" } };
const stop = (teardown: "destroy" | "skip" = "destroy"): WorkerEvent => ({ type: "stop", reason: "stop", teardown });
const handlersDone = (timedOut = false): WorkerEvent => ({ type: "message", message: { type: "handlers-done", timedOut } });
const teardown: WorkerEvent = { type: "message", message: { type: "teardown" } };
const deadline: WorkerEvent = { type: "deadline" };
const exit = (code: number | null = 0, signal: NodeJS.Signals | null = null): WorkerEvent => ({ type: "exit", code, signal });

describe("worker lifecycle", () => {
  it("a protocol worker starts, waits for ready, and arms the ready timeout", () => {
    const { next } = initialState(0, cfg);
    expect(next.phase).to.equal("starting");
    expect(next.deadline).to.equal(1000);
    const { state, effects } = run([[300, ready]]);
    expect(state.phase).to.equal("running");
    expect(state.deadline).to.equal(null);
    expect(state.t.readyAt).to.equal(300);
    expect(effects).to.deep.include({ type: "readiness", ready: true });
  });

  it("a worker that never says ready is dumped, then killed, as a ready timeout", () => {
    const { state, effects } = run([
      [1000, deadline],
      [1250, deadline],
    ]);
    expect(state.phase).to.equal("killing");
    expect(state.fault).to.equal("ready-timeout");
    // The process tree is remembered before the kill: what it forked must be found after.
    expect(effects.map((e) => e.type)).to.deep.equal(["not-ready", "dump-stack", "snapshot-tree", "signal-group"]);
  });

  it("heartbeats are watched exactly while a protocol worker runs", () => {
    const ready = run([[10, { type: "message", message: { type: "ready" } }]]);
    expect(ready.effects.map((e) => e.type)).to.include("watch-heartbeat");
    const stopped = step(ready.state, { type: "stop", reason: "stop", teardown: "destroy" }, 20, cfg);
    expect(stopped.effects.map((e) => e.type)).to.deep.equal(["snapshot-tree", "send-shutdown", "unwatch-heartbeat", "stopping"]);
  });

  it("an auto worker is ready at spawn, and back to starting if it says hello before ready", () => {
    const auto = { ...cfg, protocol: "auto" as const };
    const first = initialState(0, auto);
    expect(first.next.phase).to.equal("running");
    expect(first.effects).to.deep.equal([{ type: "readiness", ready: true }]);
    const { state, effects } = run([[50, hello]], auto);
    expect(state.phase).to.equal("starting");
    expect(state.kind).to.equal("protocol");
    expect(state.deadline).to.equal(1000); // from spawn, not from hello
    expect(effects).to.deep.include({ type: "readiness", ready: false });
  });

  it("a missed heartbeat is a running hang: stack dump, grace, then SIGKILL of the group", () => {
    const { state, effects } = run([
      [10, ready],
      [5000, { type: "heartbeat-missed", lastBeatAt: 2000 }],
    ]);
    expect(state.phase).to.equal("dumping");
    expect(state.deadline).to.equal(5250);
    expect(effects).to.deep.include({ type: "hang", phase: "running", afterMs: 3000 });
    const killed = step(state, deadline, 5250, cfg);
    expect(killed.next.phase).to.equal("killing");
    expect(killed.effects).to.deep.include({ type: "signal-group", signal: "SIGKILL" });
  });

  it("a clean destroy stop records every phase and classifies clean", () => {
    const { state, effects } = run([
      [0, ready],
      [100, stop()],
      [400, handlersDone()],
      [410, teardown],
      [600, exit(0)],
    ]);
    expect(effects.find((e) => e.type === "send-shutdown")).to.deep.equal({
      type: "send-shutdown",
      reason: "stop",
      teardown: "destroy",
      handlersTimeoutMs: 2000,
      deadlineMs: 5000,
    });
    expect(state.t).to.include({ stopRequestedAt: 100, handlersDoneAt: 400, teardownAt: 410, exitedAt: 600 });
    expect(classifyShutdown(state)).to.equal("clean");
    expect(shutdownDurations(state)).to.deep.equal({ totalMs: 500, handlersMs: 300, teardownMs: 190 });
    expect(state.hang).to.equal(null);
  });

  it("teardown past teardown_hang_after is a teardown hang; the kill waits for timeout and is forced", () => {
    const { state, effects } = run([
      [0, ready],
      [0, stop()],
      [100, handlersDone()],
      [110, teardown],
    ]);
    expect(state.deadline).to.equal(1110);
    const hung = step(state, deadline, 1110, cfg);
    expect(hung.next.hang).to.deep.equal({ phase: "teardown", at: 1110 });
    expect(hung.effects).to.deep.equal([{ type: "hang", phase: "teardown", afterMs: 1000 }, { type: "dump-stack" }]);
    expect(hung.next.deadline).to.equal(5000);
    const killed = step(hung.next, deadline, 5000, cfg);
    expect(killed.next.phase).to.equal("killing");
    const gone = step(killed.next, exit(null, "SIGKILL"), 5003, cfg);
    expect(classifyShutdown(gone.next)).to.equal("forced");
    expect(effects.filter((e) => e.type === "hang")).to.have.length(0);
  });

  it("skip: a worker still there shortly after handlers-done is killed and counts as skipped", () => {
    const { state } = run([
      [0, ready],
      [0, stop("skip")],
      [200, handlersDone()],
    ]);
    expect(state.deadline).to.equal(200 + SKIP_GRACE_MS);
    const killed = step(state, deadline, 300, cfg);
    expect(killed.effects).to.deep.include({ type: "signal-group", signal: "SIGKILL" });
    const gone = step(killed.next, exit(null, "SIGKILL"), 301, cfg);
    expect(classifyShutdown(gone.next)).to.equal("skipped");
  });

  it("handlers past handlers_timeout are a handlers hang, reported once, the stop goes on", () => {
    const { state, effects } = run([
      [0, ready],
      [0, stop()],
      [2000, deadline],
      [2005, handlersDone(true)],
      [2100, exit(0)],
    ]);
    expect(effects.filter((e) => e.type === "hang")).to.deep.equal([{ type: "hang", phase: "handlers", afterMs: 2000 }]);
    expect(state.hang?.phase).to.equal("handlers");
    expect(classifyShutdown(state)).to.equal("clean");
  });

  it("a plain worker gets its signal, and ignoring it is a signal hang forced at timeout", () => {
    const plain = { ...cfg, protocol: "off" as const };
    const { state, effects } = run([
      [0, stop()],
      [2000, deadline],
      [5000, deadline],
      [5002, exit(null, "SIGKILL")],
    ], plain);
    expect(effects.filter((e) => e.type === "signal-group")).to.deep.equal([
      { type: "signal-group", signal: "SIGTERM" },
      { type: "signal-group", signal: "SIGKILL" },
    ]);
    expect(effects.some((e) => e.type === "dump-stack")).to.equal(false);
    expect(state.hang?.phase).to.equal("signal");
    expect(classifyShutdown(state)).to.equal("forced");
  });

  it("force kills at once from any live phase and is idempotent", () => {
    const { state, effects } = run([
      [0, ready],
      [0, stop()],
      [10, { type: "force" }],
      [11, { type: "force" }],
    ]);
    expect(state.phase).to.equal("killing");
    expect(effects.filter((e) => e.type === "signal-group")).to.have.length(1);
  });

  it("a worker reached late in a stop of many counts from the stop's start, and is told it has less time", () => {
    const { state, effects } = run([
      [0, ready],
      [300, { type: "stop", reason: "stop", teardown: "destroy", at: 100 }],
    ]);
    expect(state.t.stopRequestedAt).to.equal(100);
    expect(state.deadline).to.equal(100 + 2000);
    expect(effects.find((e) => e.type === "send-shutdown")).to.deep.include({ handlersTimeoutMs: 1800, deadlineMs: 4800 });
    const hung = step({ ...state, phase: "teardown", deadline: 5100 }, deadline, 5100, cfg);
    expect(hung.next.phase).to.equal("killing");
  });

  it("a late deadline in a later phase does nothing", () => {
    const { state } = run([[0, ready]]);
    const out = step(state, deadline, 99_999, cfg);
    expect(out.next).to.equal(state);
    expect(out.effects).to.deep.equal([]);
  });

  it("messages that make no sense in a phase are ignored and reported, never fatal", () => {
    const { state, effects } = run([
      [0, ready],
      [5, handlersDone()],
    ]);
    expect(state.phase).to.equal("running");
    expect(effects).to.deep.include({ type: "ignored", event: "handlers-done", phase: "running" });
  });

  it("the first hang wins: a handlers hang stays the recorded cause after a teardown hang", () => {
    const { state, effects } = run([
      [0, ready],
      [0, stop()],
      [2000, deadline],
      [2001, handlersDone(true)],
      [3001, deadline],
    ]);
    expect(state.hang?.phase).to.equal("handlers");
    expect(effects.filter((e) => e.type === "hang").map((e) => (e as { phase: string }).phase)).to.deep.equal([
      "handlers",
      "teardown",
    ]);
  });

  describe("a worker that SIGKILL does not end (uninterruptible sleep)", () => {
    // Forced at the stop timeout (5000), then never an exit.
    const forcedStop: Array<[number, WorkerEvent]> = [
      [0, ready],
      [0, stop()],
      [2000, deadline],
      [5000, deadline],
    ];

    it("killing has its own final deadline, UNKILLABLE_AFTER_MS after the SIGKILL", () => {
      const { state } = run(forcedStop);
      expect(state.phase).to.equal("killing");
      expect(state.t.killedAt).to.equal(5000);
      expect(state.deadline).to.equal(5000 + UNKILLABLE_AFTER_MS);
    });

    it("at that deadline vigild stops waiting: exited as unkillable, no exit status, one unkillable effect", () => {
      const { state } = run(forcedStop);
      const early = step(state, deadline, 5000 + UNKILLABLE_AFTER_MS - 1, cfg);
      expect(early.next).to.equal(state);
      const out = step(state, deadline, 5000 + UNKILLABLE_AFTER_MS, cfg);
      expect(out.next.phase).to.equal("exited");
      expect(out.next.unkillable).to.equal(true);
      expect(out.next.deadline).to.equal(null);
      expect(out.next.exit).to.equal(null);
      expect(out.next.t.exitedAt).to.equal(5000 + UNKILLABLE_AFTER_MS);
      expect(out.effects).to.deep.equal([{ type: "unkillable", afterMs: UNKILLABLE_AFTER_MS }]);
      expect(classifyShutdown(out.next)).to.equal("unkillable");
      expect(shutdownDurations(out.next).totalMs).to.equal(5000 + UNKILLABLE_AFTER_MS);
    });

    it("an exit before the deadline is an ordinary forced stop", () => {
      const { state } = run([...forcedStop, [5000 + UNKILLABLE_AFTER_MS - 1, exit(null, "SIGKILL")]]);
      expect(state.unkillable).to.equal(false);
      expect(classifyShutdown(state)).to.equal("forced");
    });

    it("once given up on, a late exit, deadline, force or stop changes nothing", () => {
      const given = run([...forcedStop, [5000 + UNKILLABLE_AFTER_MS, deadline]]).state;
      for (const event of [exit(null, "SIGKILL"), deadline, { type: "force" } as WorkerEvent, stop()]) {
        const out = step(given, event, 99_000, cfg);
        expect(out.next.phase, event.type).to.equal("exited");
        expect(out.next.unkillable, event.type).to.equal(true);
        expect(out.next.t.exitedAt, event.type).to.equal(5000 + UNKILLABLE_AFTER_MS);
        expect(out.effects.filter((e) => e.type === "unkillable" || e.type === "signal-group"), event.type).to.deep.equal([]);
      }
    });

    it("a second signal does not push the final deadline back", () => {
      const { state } = run([...forcedStop, [6000, { type: "force" }], [6000, stop()]]);
      expect(state.deadline).to.equal(5000 + UNKILLABLE_AFTER_MS);
    });

    it("a hung running worker killed after its stack dump is given up on too (a hang, not a stop: no outcome)", () => {
      const { state, effects } = run([
        [10, ready],
        [5000, { type: "heartbeat-missed", lastBeatAt: 2000 }],
        [5250, deadline],
        [5250 + UNKILLABLE_AFTER_MS, deadline],
      ]);
      expect(state.phase).to.equal("exited");
      expect(state.unkillable).to.equal(true);
      expect(state.fault).to.equal("heartbeat");
      expect(effects.filter((e) => e.type === "unkillable")).to.deep.equal([{ type: "unkillable", afterMs: UNKILLABLE_AFTER_MS }]);
      expect(classifyShutdown(state)).to.equal(null);
    });

    it("a worker killed for skip and still there is unkillable, not skipped", () => {
      const { state } = run([
        [0, ready],
        [0, stop("skip")],
        [200, handlersDone()],
        [300, deadline],
        [300 + UNKILLABLE_AFTER_MS, deadline],
      ]);
      expect(classifyShutdown(state)).to.equal("unkillable");
    });
  });
});
