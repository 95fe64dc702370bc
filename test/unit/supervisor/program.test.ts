// A program's slots on the fake clock: restarts with backoff, the restart
// limit, replacements that keep workers accepting, recycling, teardown auto,
// and a stop. Exact times: nothing here waits on a real timer.
import { expect } from "chai";
import { decideAfterEnd, step, initialProgramState, MEMORY_CHECK_MS } from "../../../daemon/supervisor/program-lifecycle.js";
import { eventsOf, program, rig, config, type Rig } from "../../helpers/fake-supervision.js";
import type { Program } from "../../../daemon/supervisor/program.js";

const PLAIN = (extra = ""): string => `programs:
  app:
    command: [/bin/app]
    protocol: "off"
${extra}`;

const PROTOCOL = (extra = ""): string => `programs:
  app:
    command: [/bin/app]
    protocol: "on"
    heartbeat_timeout: 0
${extra}`;

function ready(p: Program): number {
  return p.readyCount;
}

/** Who is alive and ready after each turn, for the invariants of a replacement. */
function started(r: Rig, p: Program): { pids: number[] } {
  p.start();
  r.clock.advance(0);
  return { pids: r.host.live().map((x) => x.pid) };
}

describe("program slots on a fake clock", () => {
  it("a crashing worker restarts after its backoff, doubling while it keeps failing", () => {
    const r = rig();
    const p = program(r, PLAIN(`    restart: { backoff_initial: 100ms, backoff_max: 10s, limit: 10 in 1m }`));
    started(r, p);
    const spawnTimes: number[] = [r.clock.now()];
    for (let i = 0; i < 3; i++) {
      const before = r.host.processes.length;
      r.host.live()[0]!.exit(1);
      r.clock.advance(0);
      expect(r.host.processes.length, "no restart before the backoff").to.equal(before);
      const delay = 100 * 2 ** i;
      r.clock.advance(delay - 1);
      expect(r.host.processes.length, `not at ${delay - 1} ms`).to.equal(before);
      r.clock.advance(1);
      expect(r.host.processes.length, `at ${delay} ms`).to.equal(before + 1);
      spawnTimes.push(r.clock.now());
    }
    const scheduled = eventsOf(r, "worker-restart-scheduled");
    expect(scheduled.map((e) => [e.reason, e.delayMs])).to.deep.equal([
      ["crash", 100],
      ["crash", 200],
      ["crash", 400],
    ]);
    expect(p.restarts).to.deep.equal({ crash: 3 });
  });

  it("the restart limit fails the program and stops its other workers", () => {
    const r = rig();
    const p = program(r, PLAIN(`    instances: 2\n    restart: { backoff_initial: 0, limit: 2 in 1m }`));
    started(r, p);
    for (let i = 0; i < 3; i++) {
      r.host.live().find((x) => x.spec.env.VIGIL_WORKER === "0")!.exit(1);
      r.clock.advance(0);
      r.clock.advance(0);
    }
    expect(p.state).to.equal("failed");
    expect(p.failure).to.equal("3 restarts within 1m");
    expect(eventsOf(r, "program-failed")).to.have.length(1);
    // The other slot's worker got its stop signal; a failed program runs nothing.
    r.clock.advance(0);
    expect(r.host.live()).to.deep.equal([]);
    expect(p.slots().map((s) => s.empty)).to.deep.equal(["failed", "failed"]);
  });

  it("a command that cannot be executed fails the program at once, without a retry", () => {
    const r = rig();
    r.host.missing.add("/bin/app");
    const p = program(r, PLAIN(`    sockets: [http]\nsockets:\n  http: { listen: "127.0.0.1:0" }`));
    p.start();
    r.clock.advance(0);
    expect(p.state).to.equal("failed");
    expect(p.failure).to.equal("cannot start: spawn /bin/app ENOENT");
  });

  it("restart: never leaves an ended worker's slot down, and status and metrics both say stopped", () => {
    const r = rig();
    const p = program(r, PLAIN(`    instances: 2\n    restart: { policy: never }`));
    started(r, p);
    r.host.live()[0]!.exit(0);
    r.clock.advance(0);
    const views = p.slots();
    expect(views[0]!.empty).to.equal("stopped");
    expect(views[1]!.workers.map((w) => w.label)).to.deep.equal(["running"]);
    expect(p.state).to.equal("running");
  });

  it("a replacement stops the old worker only once the new one is ready", () => {
    const r = rig();
    r.host.behaviours.set("app", { ready: false, handlersMs: 0 });
    const p = program(r, PROTOCOL());
    p.start();
    r.clock.advance(0);
    const [first] = r.host.live();
    first!.say({ type: "ready" });
    expect(ready(p)).to.equal(1);
    let settled = false;
    void p.replaceAll("restart").then(() => (settled = true));
    r.clock.advance(0);
    const [, second] = r.host.live();
    expect(second, "the replacement is spawned at once").to.not.equal(undefined);
    expect(first!.received, "the old one runs on until the new one is ready").to.deep.equal([]);
    expect(p.ready, "the program stays ready through the replacement").to.equal(true);
    r.clock.advance(5_000);
    expect(first!.received).to.deep.equal([]);
    second!.say({ type: "ready" });
    expect(first!.received.map((m) => [m.type, m.reason])).to.deep.equal([["shutdown", "restart"]]);
    r.clock.advance(0);
    r.clock.advance(0);
    expect(first!.exited).to.equal(true);
    return Promise.resolve().then(() => expect(settled).to.equal(true));
  });

  it("workers on a shared socket are replaced one slot at a time, never fewer than all but one accepting", () => {
    const r = rig();
    r.host.fallback = { ready: true, handlersMs: 50 };
    const p = program(r, PROTOCOL(`    instances: 3\n    sockets: [http]\nsockets:\n  http: { listen: "127.0.0.1:0" }`));
    started(r, p);
    const olds = r.host.live().map((x) => x.pid);
    void p.replaceAll("restart");
    let minReady = Infinity;
    let maxStopping = 0;
    for (let t = 0; t < 1000; t++) {
      r.clock.advance(1);
      minReady = Math.min(minReady, p.readyCount);
      maxStopping = Math.max(maxStopping, r.host.live().filter((x) => x.received.length > 0).length);
    }
    expect(r.host.live().map((x) => x.pid).filter((pid) => olds.includes(pid)), "every old worker is gone").to.deep.equal([]);
    expect(r.host.live()).to.have.length(3);
    expect(maxStopping, "one old worker stops at a time").to.equal(1);
    expect(minReady).to.equal(3);
    expect(eventsOf(r, "worker-restart-scheduled").map((e) => e.worker)).to.deep.equal([0, 1, 2]);
  });

  it("max_age recycles a worker at exactly its spawn time plus max_age, replacement first", () => {
    const r = rig();
    const p = program(r, PROTOCOL(`    recycle: { max_age: 1h }`));
    started(r, p);
    const spawnedAt = r.host.live()[0]!.spawnedAt;
    r.clock.advance(3_600_000 - (r.clock.now() - spawnedAt) - 1);
    expect(eventsOf(r, "worker-recycling")).to.have.length(0);
    r.clock.advance(1);
    expect(eventsOf(r, "worker-recycling").map((e) => e.why)).to.deep.equal(["max_age 1h reached"]);
    r.clock.advance(10);
    expect(r.host.live()).to.have.length(1);
    expect(p.restarts).to.deep.equal({ recycle: 1 });
  });

  it("max_memory samples every 5 s and recycles a worker over the limit", () => {
    const r = rig();
    const p = program(r, PROTOCOL(`    recycle: { max_memory: 100MiB }`));
    started(r, p);
    const [w] = r.host.live();
    r.host.rss.set(w!.pid, 200 * 1024 * 1024);
    r.clock.advance(MEMORY_CHECK_MS - 1);
    expect(eventsOf(r, "worker-recycling")).to.have.length(0);
    r.clock.advance(1);
    expect(eventsOf(r, "worker-recycling").map((e) => e.why)).to.deep.equal(["memory 200MiB over max_memory 100MiB"]);
  });

  it("teardown: auto switches the program to skip at its first teardown hang", () => {
    const r = rig();
    r.host.behaviours.set("app", { ready: true, handlersMs: null });
    const p = program(r, PROTOCOL(`    shutdown: { teardown: auto, handlers_timeout: 1s, teardown_hang_after: 500ms, timeout: 5s }`));
    started(r, p);
    expect(p.teardownMode).to.equal("destroy");
    void p.replaceAll("restart");
    r.clock.advance(0);
    const old = r.host.processes[0]!;
    expect(old.received.map((m) => m.teardown)).to.deep.equal(["destroy"]);
    old.say({ type: "handlers-done", timedOut: false });
    r.clock.advance(499);
    expect(p.teardownMode).to.equal("destroy");
    r.clock.advance(1);
    expect(p.teardownMode).to.equal("skip");
    expect(eventsOf(r, "teardown-switched")).to.have.length(1);
    // Workers spawned from now on are told to skip.
    void p.replaceAll("restart");
    r.clock.advance(0);
    const newest = r.host.processes[r.host.processes.length - 1]!;
    expect(newest.spec.env.VIGIL_TEARDOWN).to.equal("skip");
  });

  it("a worker killed by the OOM killer restarts with reason oom", () => {
    const r = rig();
    program(r, PLAIN()).start();
    r.clock.advance(0);
    r.oomKills.pending = 1;
    r.host.live()[0]!.exit(null, "SIGKILL");
    expect(eventsOf(r, "worker-restart-scheduled").map((e) => e.reason)).to.deep.equal(["oom"]);
  });

  it("a stop cancels a pending restart and resolves when the last worker is gone", async () => {
    const r = rig();
    const p = program(r, PLAIN(`    instances: 2\n    restart: { backoff_initial: 1s }`));
    started(r, p);
    r.host.live()[0]!.exit(1);
    let stopped = false;
    const done = p.stop("stop").then(() => (stopped = true));
    r.clock.advance(0);
    await Promise.resolve();
    expect(stopped).to.equal(true);
    await done;
    r.clock.advance(5_000);
    expect(r.host.processes, "the restart in backoff never happened").to.have.length(2);
    expect(p.state).to.equal("stopped");
    expect(p.slots().map((s) => s.empty)).to.deep.equal(["stopped", "stopped"]);
  });

  it("the pure step: a surplus slot of a reload stops first and is dropped once empty", () => {
    const cfg3 = config(PLAIN(`    instances: 3`)).programs[0]!;
    const cfg1 = config(PLAIN(`    instances: 1`)).programs[0]!;
    let s = step(initialProgramState(cfg3), { type: "start" }, 0).next;
    for (const id of [1, 2, 3]) s = step(s, { type: "readiness", id, ready: true }, 0).next;
    const replaced = step(s, { type: "replace", reason: "reload", cfg: cfg1 }, 10);
    expect(replaced.effects.filter((e) => e.type === "stop-worker").map((e) => e.type === "stop-worker" && e.id)).to.deep.equal([2, 3]);
    expect(replaced.next.slots).to.have.length(3);
    let t = replaced.next;
    for (const id of [2, 3]) t = step(t, { type: "ended", id, state: { stop: {} } as never, oom: false }, 20).next;
    expect(t.slots).to.have.length(1);
  });

  it("decideAfterEnd: a worker that ran longer than backoff_max starts its backoff over", () => {
    const cfg = config(PLAIN(`    restart: { backoff_initial: 100ms, backoff_max: 1s }`)).programs[0]!;
    const ended = (ranMs: number) =>
      ({ fault: null, exit: { code: 1, signal: null, error: null }, t: { readyAt: 0, exitedAt: ranMs, killedAt: null } }) as never;
    expect(decideAfterEnd(ended(5_000), cfg, [], 4, 10_000)).to.deep.include({ action: "restart", delayMs: 100, failures: 1 });
    expect(decideAfterEnd(ended(10), cfg, [], 4, 10_000)).to.deep.include({ action: "restart", delayMs: 1000, failures: 5 });
  });
});
