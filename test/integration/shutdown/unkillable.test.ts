// How a worker given up on as unkillable reads everywhere it is shown: the
// report's summary and counts, vigilctl last-shutdown, the log line, the metric.
import { expect } from "chai";
import { PassThrough } from "node:stream";
import { buildReport } from "../../../daemon/shutdown/collect.js";
import type { WorkerShutdownRecord } from "../../../daemon/shutdown/report.js";
import { formatLastShutdown, shutdownRow } from "../../../daemon/ctl/format.js";
import { logEvent } from "../../../daemon/log/events.js";
import { createLogger } from "../../../daemon/log/logger.js";
import { Metrics } from "../../../daemon/metrics/metrics.js";
import { sampleValue } from "../../helpers/vigild.js";

const stuck: WorkerShutdownRecord = {
  program: "web",
  worker: 0,
  pid: 4242,
  reason: "stop",
  teardown: "destroy",
  signal: null,
  outcome: "unkillable",
  hang: "handlers",
  handlers_done_ms: null,
  teardown_begun_ms: null,
  killed_ms: 1000,
  exited_ms: 6000,
  handlers_ms: null,
  teardown_ms: null,
  exit_code: null,
  exit_signal: null,
};
const clean: WorkerShutdownRecord = { ...stuck, program: "ok", pid: 4243, outcome: "clean", hang: null, killed_ms: null, exited_ms: 20, exit_code: 0 };

describe("an unkillable worker in the report, vigilctl, the log and the metrics", () => {
  const report = buildReport({
    records: [stuck, clean],
    startedAt: new Date("2025-01-02T03:04:05.000Z"),
    endedAt: new Date("2025-01-02T03:04:11.010Z"),
    durationMs: 6010,
    forcedBySignal: false,
    teardownSwitched: [],
  });

  it("the summary counts it and names it with its pid, which may still be there", () => {
    expect(report.outcomes).to.deep.equal({ clean: 1, skipped: 0, forced: 0, unkillable: 1 });
    expect(report.summary).to.equal("stopped 2 workers in 6.01 s: 1 clean, 1 unkillable (handlers hang: web/0, unkillable: web/0 pid 4242)");
  });

  it("vigilctl last-shutdown shows the outcome and that there was no exit", () => {
    expect(shutdownRow(stuck)).to.deep.equal(["web/0", "unkillable", "handlers", "-", "-", "6s", "still there"]);
    expect(formatLastShutdown(report)).to.contain("web/0           unkillable  handlers  -         -         6s     still there");
  });

  it("the log says it at error level, where the kernel holds it, and what happens next", () => {
    const stream = new PassThrough();
    let text = "";
    stream.on("data", (c: Buffer) => (text += c.toString()));
    logEvent(createLogger({ level: "info", format: "json", stream }), {
      type: "worker-unkillable",
      program: "web",
      worker: 0,
      pid: 4242,
      afterMs: 5003,
      state: "D",
      wchan: "__refrigerator",
    });
    const entry = JSON.parse(text) as Record<string, unknown>;
    expect(entry).to.include({ level: "error", program: "web", pid: 4242, proc_state: "D", wchan: "__refrigerator", after_ms: 5003 });
    expect(entry.msg).to.match(/^web\/0\[4242\] unkillable: still there 5.003s after SIGKILL \(state D in __refrigerator\)/);
    expect(entry.msg).to.match(/no longer waiting for it: its slot is released as if it had exited/);
  });

  it("vigil_worker_unkillable_total starts at 0 per program and counts each one", async () => {
    const metrics = new Metrics();
    metrics.addProgram("web");
    const scrape = async (): Promise<string> => metrics.registry.metrics();
    expect(sampleValue(await scrape(), "vigil_worker_unkillable_total", { program: "web" })).to.equal(0);
    metrics.onEvent({ type: "worker-unkillable", program: "web", worker: 0, pid: 4242, afterMs: 5000, state: "D", wchan: null });
    expect(sampleValue(await scrape(), "vigil_worker_unkillable_total", { program: "web" })).to.equal(1);
    expect(sampleValue(await scrape(), "vigil_worker_shutdown_seconds_count", { program: "web", outcome: "unkillable" })).to.equal(0);
  });
});
