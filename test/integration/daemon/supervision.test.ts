// vigild with real worker processes: restarts, backoff, FAILED, running
// hangs, protocol garbage, process groups, and workers that outlive nothing.
import { expect } from "chai";
import { Vigild, isAlive, nodeWorker, py, stopAll, waitDead, type LogEntry } from "../../helpers/vigild.js";

const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);

describe("supervision (real vigild, real workers)", function () {
  this.timeout(60_000);
  afterEach(stopAll);

  it("restarts a crashing worker with growing backoff, then marks the program FAILED", async () => {
    const v = new Vigild({
      programs: {
        crashy: {
          command: py("py_crash.py"),
          restart: { backoff_initial: "100ms", backoff_max: "1s", limit: "4 in 60s" },
        },
        steady: { command: ["sleep", "1000"], protocol: "off" },
      },
    });
    const failed = await v.waitFor(isMsg(/program crashy FAILED/), 20_000);
    expect(failed.level).to.equal("error");
    const delays = v.logs.filter(isMsg(/^crashy\/0.* restarting in/)).map((e) => e.delay_ms);
    expect(delays).to.deep.equal([100, 200, 400, 800]);
    expect(await v.metric("vigil_worker_restarts_total", { program: "crashy", reason: "crash" })).to.equal(4);
    expect(await v.metric("vigil_workers", { program: "crashy", state: "failed" })).to.equal(1);
    // The other program is untouched and vigild says it is unhealthy.
    expect(await v.metric("vigil_workers", { program: "steady", state: "running" })).to.equal(1);
    const health = await fetch((await v.metricsUrl()).replace("/metrics", "/healthz"));
    expect(health.status).to.equal(503);
    expect(await health.text()).to.contain("crashy");
  });

  it("detects a SIGSTOPped Python worker at its heartbeat deadline and replaces it", async () => {
    const v = new Vigild({
      programs: { web: { command: py("py_ok.py"), protocol: "on", instances: 2, heartbeat_timeout: "1s" } },
    });
    const ready = await v.waitForCount(isMsg(/^web\/\d.* ready after/), 2);
    const victim = ready[0]!.pid as number;
    const stoppedAt = Date.now();
    process.kill(victim, "SIGSTOP");
    const hang = await v.waitFor((e) => e.pid === victim && e.phase === "running", 5000);
    const seenAfter = Date.parse(hang.time) - stoppedAt;
    // The last beat was at most one interval (250 ms) before the stop.
    expect(seenAfter).to.be.within(700, 1100);
    expect(hang.after_ms as number).to.be.within(1000, 1500);
    await v.waitFor((e) => e.pid === victim && e.reason === "hang" && /restarting/.test(e.msg));
    expect(await waitDead(victim, 3000)).to.equal(true);
    await v.waitForCount(isMsg(/^web\/\d.* ready after/), 3);
    expect(await v.metric("vigil_worker_hangs_total", { program: "web", phase: "running" })).to.equal(1);
    expect(await v.metric("vigil_worker_restarts_total", { program: "web", reason: "hang" })).to.equal(1);
  });

  it("puts the stacks of a Python worker that holds the GIL into the log before killing it", async () => {
    const v = new Vigild({
      programs: {
        wedged: {
          command: py("py_stop_heartbeat.py", "--after", "0.3"),
          protocol: "on",
          heartbeat_timeout: "1s",
          stack_dump_grace: "500ms",
          restart: { policy: "never" },
        },
      },
    });
    const hang = await v.waitFor((e) => e.phase === "running", 10_000);
    await v.waitFor(isMsg(/^wedged\/0.* killed by SIGKILL/), 5000);
    const dump = v.logs.filter((e) => e.pid === hang.pid && e.stream === "stderr").map((e) => e.msg);
    expect(dump.some((l) => /^(Current thread|Thread) 0x/.test(l)), dump.join("\n")).to.equal(true);
    expect(dump.some((l) => /File ".*py_stop_heartbeat\.py"/.test(l)), dump.join("\n")).to.equal(true);
  });

  it("detects a Node worker whose event loop is blocked and replaces it", async () => {
    const v = new Vigild({
      programs: { js: { command: nodeWorker("node_block.mjs", "--after", "300"), protocol: "on", heartbeat_timeout: "1s" } },
    });
    const first = await v.waitFor(isMsg(/^js\/0.* ready after/));
    const hang = await v.waitFor((e) => e.pid === first.pid && e.phase === "running", 10_000);
    expect(hang.after_ms as number).to.be.within(1000, 1500);
    await v.waitFor((e) => /^js\/0.* ready after/.test(e.msg) && e.pid !== first.pid, 10_000);
    expect(v.logs.some((e) => e.pid === first.pid && /main thread blocked/.test(e.msg))).to.equal(true);
  });

  it("counts garbage, a 1 MiB line and unknown messages as protocol errors and keeps the worker and itself running", async () => {
    const v = new Vigild({ programs: { noisy: { command: py("py_garbage.py"), protocol: "on" } } });
    await v.waitFor(isMsg(/garbage sent/));
    await v.waitForCount((e) => /protocol error/.test(e.msg), 4, 5000, "protocol errors");
    expect(await v.metric("vigil_protocol_errors_total", { program: "noisy" })).to.be.at.least(4);
    expect(v.logs.some((e) => /over the 64 KiB limit/.test(e.msg))).to.equal(true);
    expect(await v.metric("vigil_workers", { program: "noisy", state: "running" })).to.equal(1);
    expect(v.logs.filter(isMsg(/restarting/))).to.have.length(0);
  });

  it("kills a worker's forked child with it", async () => {
    const v = new Vigild({ programs: { forker: { command: py("py_fork_child.py"), protocol: "on", restart: { policy: "never" } } } });
    const line = await v.waitFor(isMsg(/child pid=\d+/));
    const child = Number(/child pid=(\d+)/.exec(line.msg)![1]);
    const worker = line.pid as number;
    expect(isAlive(child)).to.equal(true);
    process.kill(worker, "SIGKILL");
    await v.waitFor(isMsg(/^forker\/0.* killed by SIGKILL/));
    expect(await waitDead(child, 2000)).to.equal(true);
  });

  it("when vigild is SIGKILLed its Python and Node workers exit by themselves within 2 s", async () => {
    const v = new Vigild({
      programs: {
        py: { command: py("py_ok.py"), protocol: "on" },
        js: { command: nodeWorker("node_ok.mjs"), protocol: "on" },
      },
    });
    const ready = await v.waitForCount(isMsg(/ready after/), 2);
    v.signal("SIGKILL");
    await v.waitExit();
    for (const e of ready) expect(await waitDead(e.pid as number, 2000), `${String(e.program)} ${String(e.pid)}`).to.equal(true);
  });

  it("kills a protocol worker that does not say ready within ready_timeout, and restarts it", async () => {
    const v = new Vigild({
      programs: { mute: { command: ["sleep", "1000"], protocol: "on", ready_timeout: "500ms", stack_dump_grace: "0" } },
    });
    const late = await v.waitFor(isMsg(/did not say ready within 500ms/), 5000);
    expect(late.after_ms as number).to.be.within(500, 1000);
    expect(late.level).to.equal("warn");
    await v.waitFor((e) => e.reason === "hang" && /restarting/.test(e.msg));
    expect(await waitDead(late.pid as number, 2000)).to.equal(true);
  });

  it("announces readiness once for all instances, not when the first plain one is spawned (regression)", async () => {
    const v = new Vigild({ programs: { plain: { command: ["sleep", "1000"], instances: 3 } } });
    const all = await v.waitFor(isMsg(/^all \d+ workers ready/));
    expect(all.msg).to.match(/^all 3 workers ready/);
    expect(v.logs.slice(0, v.logs.indexOf(all)).filter(isMsg(/ spawned$/))).to.have.length(3);
  });

  it("counts a plain worker as ready once spawned, and READY comes when every instance is", async () => {
    const v = new Vigild({
      programs: {
        plain: { command: ["sleep", "1000"], instances: 3 },
        proto: { command: py("py_ok.py"), protocol: "on" },
      },
    });
    const all = await v.waitFor(isMsg(/^all 4 workers ready/));
    const protoReady = v.logs.find(isMsg(/^proto\/0.* ready after/));
    expect(protoReady, "the protocol worker said ready before READY").to.not.equal(undefined);
    expect(v.logs.indexOf(protoReady!)).to.be.below(v.logs.indexOf(all));
  });
});

describe("recycling (real workers)", function () {
  this.timeout(60_000);
  afterEach(stopAll);

  it("replaces a worker past max_age before stopping it (phased, reason recycle)", async () => {
    const v = new Vigild({ programs: { web: { command: py("py_ok.py", "--handler"), protocol: "on", recycle: { max_age: "1500ms" } } } });
    const first = await v.waitFor(isMsg(/^web\/0.* ready after/));
    const recycling = await v.waitFor(isMsg(/recycling: max_age 1\.5s reached/), 10_000);
    expect(recycling.pid).to.equal(first.pid);
    const next = await v.waitFor((e) => /^web\/0.* ready after/.test(e.msg) && e.pid !== first.pid);
    const oldExit = await v.waitFor((e) => e.pid === first.pid && typeof e.outcome === "string");
    expect(oldExit.outcome).to.equal("clean");
    expect(v.logs.indexOf(next)).to.be.below(v.logs.indexOf(oldExit));
    expect(v.logs.some((e) => e.pid === first.pid && /^handler ran event=process_stopping reason=recycle /.test(e.msg))).to.equal(true);
    expect(await v.metric("vigil_worker_restarts_total", { program: "web", reason: "recycle" })).to.be.at.least(1);
  });

  it("recycles a worker whose process tree grows past max_memory", async () => {
    const hog = 'import sys; sys.path.insert(0, "lib/python"); import vigil, time; vigil.ready(); b = bytearray(96 * 1024 * 1024); time.sleep(1000)';
    const v = new Vigild({ programs: { hog: { command: ["python3", "-c", hog], protocol: "on", recycle: { max_memory: "64MiB" } } } });
    const first = await v.waitFor(isMsg(/^hog\/0.* ready after/));
    const recycling = await v.waitFor(isMsg(/recycling: memory \d+MiB over max_memory 64MiB/), 15_000);
    expect(recycling.pid).to.equal(first.pid);
    await v.waitFor((e) => e.pid === first.pid && typeof e.outcome === "string", 10_000);
  });
});
