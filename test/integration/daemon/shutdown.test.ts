// The phased, measured, bounded stop against real Python and Node workers,
// starting with the mod_wsgi 4.9.1 case itself: a non-daemon thread that
// keeps interpreter teardown waiting forever.
import { expect } from "chai";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Vigild, isAlive, nodeWorker, py, stopAll, waitDead, type LogEntry } from "../../helpers/vigild.js";

const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);
const exited = (program: string) => (e: LogEntry) => e.program === program && typeof e.outcome === "string";

async function startAndStop(
  programs: Record<string, unknown>,
  readyCount: number,
): Promise<{ v: Vigild; stopMs: number; exits: LogEntry[] }> {
  const v = new Vigild({ programs });
  // Python interpreters starting side by side on 2 loaded cores: up to a second each.
  await v.waitForCount(isMsg(/ ready after /), readyCount, Math.max(20_000, readyCount * 1_000), "ready workers");
  const t0 = Date.now();
  v.signal("SIGTERM");
  const { code } = await v.waitExit(30_000);
  const stopMs = Date.now() - t0;
  expect(code, v.tail()).to.equal(0);
  return { v, stopMs, exits: v.logs.filter((e) => typeof e.outcome === "string") };
}

describe("phased shutdown (real workers)", function () {
  this.timeout(90_000);
  afterEach(stopAll);

  it("destroy + a thread that never ends: teardown hang at teardown_hang_after with its stack, SIGKILL at timeout, forced, no atexit", async () => {
    const { v, exits } = await startAndStop(
      {
        web: {
          command: py("py_teardown_hang.py"),
          protocol: "on",
          shutdown: { teardown: "destroy", handlers_timeout: "1s", teardown_hang_after: "1s", timeout: "3s" },
        },
      },
      1,
    );
    const hang = v.logs.find((e) => e.phase === "teardown")!;
    expect(hang, v.tail(40)).to.not.equal(undefined);
    expect(hang.level).to.equal("warn");
    expect(hang.after_ms as number).to.be.within(1000, 1500);
    const stack = v.logs.filter((e) => e.pid === hang.pid && e.stream === "stderr").map((e) => e.msg);
    expect(stack.some((l) => /in spin$/.test(l)), stack.join("\n")).to.equal(true);
    const [exit] = exits;
    expect(exit!.outcome).to.equal("forced");
    expect(exit!.hang).to.equal("teardown");
    expect(exit!.shutdown_ms as number).to.be.within(3000, 3500);
    expect(v.logs.some(isMsg(/^atexit ran$/))).to.equal(false);
    expect(v.logs.some(isMsg(/stopped 1 worker in 3\.\d\d s: 1 forced \(teardown hang: web\/0\)/))).to.equal(true);
  });

  it("skip: the same worker leaves right after its handlers, no atexit, outcome skipped", async () => {
    const { v, exits } = await startAndStop(
      { web: { command: py("py_teardown_hang.py"), protocol: "on", shutdown: { teardown: "skip", timeout: "3s" } } },
      1,
    );
    const [exit] = exits;
    expect(exit!.outcome).to.equal("skipped");
    expect(exit!.hang).to.equal(null);
    expect((exit!.shutdown_ms as number) - (exit!.handlers_ms as number)).to.be.at.most(500);
    expect(exit!.shutdown_ms as number).to.be.below(500);
    expect(v.logs.some(isMsg(/^atexit ran$/))).to.equal(false);
  });

  it("a handler that stops the thread: it ran with the reason, teardown is quick and measured, clean, atexit ran", async () => {
    const { v, exits } = await startAndStop(
      { web: { command: py("py_teardown_hang.py", "--handler"), protocol: "on", shutdown: { teardown: "destroy", timeout: "3s" } } },
      1,
    );
    expect(v.logs.some(isMsg(/^handler ran reason=stop$/))).to.equal(true);
    expect(v.logs.some(isMsg(/^atexit ran$/))).to.equal(true);
    const [exit] = exits;
    expect(exit!.outcome).to.equal("clean");
    expect(exit!.code).to.equal(0);
    expect(exit!.teardown_ms as number).to.be.a("number").and.below(1000);
    expect(exit!.shutdown_ms as number).to.be.below(1000);
  });

  it("a handler sleeping past handlers_timeout is a hang in phase handlers", async () => {
    const { v, exits } = await startAndStop(
      { web: { command: py("py_handler_sleep.py", "5"), protocol: "on", shutdown: { handlers_timeout: "500ms", timeout: "3s" } } },
      1,
    );
    const hang = v.logs.find((e) => e.phase === "handlers")!;
    expect(hang, v.tail()).to.not.equal(undefined);
    expect(hang.after_ms as number).to.be.within(450, 1000);
    expect(exits[0]!.hang).to.equal("handlers");
  });

  it("a plain worker that ignores SIGTERM, with a forked child: signal hang, forced at timeout, nothing of its group left", async () => {
    const script = 'trap "" TERM; sleep 1000 & echo "child $!"; while true; do sleep 1; done';
    const v = new Vigild({
      programs: { sh: { command: ["sh", "-c", script], protocol: "off", shutdown: { handlers_timeout: "1s", timeout: "2s" } } },
    });
    const line = await v.waitFor(isMsg(/^child \d+$/));
    const child = Number(line.msg.split(" ")[1]);
    const shell = line.pid as number;
    v.signal("SIGTERM");
    await v.waitExit(10_000);
    const exit = v.logs.find(exited("sh"))!;
    expect(exit.outcome).to.equal("forced");
    expect(exit.hang).to.equal("signal");
    expect(exit.shutdown_ms as number).to.be.within(2000, 2500);
    expect(v.logs.find((e) => e.phase === "signal")!.after_ms as number).to.be.within(1000, 1500);
    expect(await waitDead(child, 1000)).to.equal(true);
    expect(isAlive(shell)).to.equal(false);
  });

  it("teardown auto: the first hanging stop is forced and switches the program to skip (logged once); the next stop skips", async () => {
    const v = new Vigild({
      programs: {
        web: {
          command: py("py_teardown_hang.py"),
          protocol: "on",
          env: { GENERATION: "1" },
          shutdown: { teardown: "auto", teardown_hang_after: "500ms", timeout: "2s" },
        },
      },
    });
    const first = await v.waitFor(isMsg(/^web\/0.* ready after/));
    // A reload with a changed program replaces the worker: the first phased stop.
    const config = readFileSync(v.configPath, "utf8").replace("GENERATION: \"1\"", "GENERATION: \"2\"");
    expect(config).to.contain('GENERATION: "2"');
    writeFileSync(v.configPath, config);
    v.signal("SIGHUP");
    const firstExit = await v.waitFor((e) => e.pid === first.pid && typeof e.outcome === "string", 10_000);
    expect(firstExit.outcome).to.equal("forced");
    expect(firstExit.hang).to.equal("teardown");
    const switched = v.logs.filter(isMsg(/teardown auto switches to skip/));
    expect(switched).to.have.length(1);
    expect(switched[0]!.msg).to.contain(`web/0[${String(first.pid)}]`);
    v.signal("SIGTERM");
    await v.waitExit(10_000);
    const exits = v.logs.filter(exited("web"));
    expect(exits.map((e) => e.outcome)).to.deep.equal(["forced", "skipped"]);
    expect(v.logs.filter(isMsg(/teardown auto switches to skip/))).to.have.length(1);
  });

  it("50 workers, half hanging in teardown: the whole stop ends soon after the timeout", async () => {
    const { v, exits } = await startAndStop(
      {
        hang: { command: py("py_teardown_hang.py"), protocol: "on", instances: 25, shutdown: { teardown_hang_after: "1s", timeout: "2s" } },
        ok: { command: py("py_teardown_hang.py", "--handler"), protocol: "on", instances: 25, shutdown: { timeout: "2s" } },
      },
      50,
    );
    expect(exits).to.have.length(50);
    expect(exits.filter((e) => e.program === "hang").every((e) => e.outcome === "forced")).to.equal(true);
    expect(exits.filter((e) => e.program === "ok").every((e) => e.outcome === "clean")).to.equal(true);
    const summary = v.logs.find(isMsg(/^stopped 50 workers in/))!;
    expect(summary.duration_ms as number).to.be.within(2000, 2500);
  });

  it("writes the last-shutdown report, exports it after a restart, and survives a corrupt one", async () => {
    const programs = {
      web: {
        command: py("py_teardown_hang.py"),
        protocol: "on",
        shutdown: { handlers_timeout: "500ms", teardown_hang_after: "300ms", timeout: "1s" },
      },
      ok: { command: py("py_teardown_hang.py", "--handler"), protocol: "on" },
    };
    const { v } = await startAndStop(programs, 2);
    const stateDir = join(v.dir, "state");
    const report = JSON.parse(readFileSync(join(stateDir, "last-shutdown.json"), "utf8")) as {
      outcomes: Record<string, number>;
      workers: Array<{ program: string; outcome: string; hang: string | null; teardown_begun_ms: number | null; killed_ms: number | null }>;
      summary: string;
    };
    expect(report.outcomes).to.deep.equal({ clean: 1, skipped: 0, forced: 1, unkillable: 0 });
    const web = report.workers.find((w) => w.program === "web")!;
    expect(web.hang).to.equal("teardown");
    expect(web.killed_ms).to.be.within(1000, 1500);
    expect(web.teardown_begun_ms).to.be.a("number");
    // The next vigild, on the same state_dir, serves it as metrics.
    const again = new Vigild({ state_dir: stateDir, programs });
    await again.waitFor(isMsg(/^previous stop: stopped 2 workers/));
    expect(await again.metric("vigil_last_shutdown_workers", { outcome: "forced" })).to.equal(1);
    expect(await again.metric("vigil_last_shutdown_workers", { outcome: "clean" })).to.equal(1);
    expect(await again.metric("vigil_last_shutdown_seconds")).to.be.within(1, 2);
    again.signal("SIGTERM");
    await again.waitExit();
    // A corrupt report is logged and ignored.
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(join(stateDir, "last-shutdown.json"), "{ not json");
    const third = new Vigild({ state_dir: stateDir, programs: { ok: programs.ok } });
    await third.waitFor(isMsg(/all 1 workers ready/));
    expect(third.logs.some(isMsg(/ignoring the last-shutdown report .*not JSON/))).to.equal(true);
  });

  it("a stop interrupted by SIGKILL is reported at the next start", async () => {
    const programs = { web: { command: py("py_teardown_hang.py"), protocol: "on", shutdown: { timeout: "5s" } } };
    const v = new Vigild({ programs });
    await v.waitFor(isMsg(/ ready after /));
    v.signal("SIGTERM");
    await v.waitFor(isMsg(/^stopping 1 workers/));
    v.signal("SIGKILL");
    await v.waitExit();
    const again = new Vigild({ state_dir: join(v.dir, "state"), programs });
    await again.waitFor(isMsg(/the previous stop did not complete/));
  });

  it("a second SIGTERM forces every remaining worker at once", async () => {
    const v = new Vigild({
      programs: { web: { command: py("py_teardown_hang.py"), protocol: "on", instances: 2, shutdown: { timeout: "30s" } } },
    });
    await v.waitForCount(isMsg(/ ready after /), 2);
    v.signal("SIGTERM");
    await v.waitFor(isMsg(/^stopping 2 workers/));
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    v.signal("SIGTERM");
    await v.waitExit(5000);
    expect(Date.now() - t0).to.be.below(1500);
    expect(v.logs.filter(exited("web")).map((e) => e.outcome)).to.deep.equal(["forced", "forced"]);
    expect(v.logs.some(isMsg(/second stop request/))).to.equal(true);
  });

  it("Node: a handler promise that never settles is a handlers hang; a live setInterval is measured in teardown", async () => {
    const { v } = await startAndStop(
      {
        hangs: { command: nodeWorker("node_handler_hang.mjs"), protocol: "on", shutdown: { handlers_timeout: "500ms", timeout: "3s" } },
        ticks: {
          command: nodeWorker("node_interval_teardown.mjs"),
          protocol: "on",
          shutdown: { teardown_hang_after: "500ms", timeout: "2s" },
        },
      },
      2,
    );
    expect(v.logs.find(exited("hangs"))!.hang).to.equal("handlers");
    const ticks = v.logs.find(exited("ticks"))!;
    expect(ticks.hang).to.equal("teardown");
    expect(ticks.outcome).to.equal("forced");
    expect(ticks.teardown_ms as number).to.be.within(1500, 2100);
  });
});
