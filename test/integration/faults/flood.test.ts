// A worker that is just `yes`, while vigild's own log is not read at all (its
// stdout pipe full, as when journald falls behind): vigild's memory stays
// bounded, the other worker's hang is still caught on time, /metrics answers,
// and the dropped bytes are counted.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { Vigild, py, stopAll, type LogEntry } from "../../helpers/vigild.js";

const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);

function rssMiB(pid: number): number {
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
  return kb / 1024;
}

describe("a worker that floods its output", function () {
  this.timeout(60_000);
  afterEach(stopAll);

  it("costs vigild bounded memory while its log is stuck; hangs are still caught, /metrics answers, drops are counted", async () => {
    const v = new Vigild({
      programs: {
        chatty: { command: ["yes", "a line of output from a worker that never stops talking"], protocol: "off" },
        steady: { command: py("py_ok.py"), protocol: "on", heartbeat_timeout: "2s", restart: { backoff_initial: "0" } },
      },
    });
    await v.waitFor(isMsg(/^all 2 workers ready/), 15_000);
    const url = await v.metricsUrl();
    const steady = (await v.waitFor(isMsg(/^steady\/0\[\d+\] spawned/))).pid as number;
    const before = rssMiB(v.pid);
    // From here on nobody reads vigild's stdout: its pipe fills and stays full.
    v.child.stdout!.pause();
    const scrape = async (): Promise<{ ms: number; text: string }> => {
      const t0 = performance.now();
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      const text = await res.text();
      return { ms: performance.now() - t0, text };
    };
    const value = (text: string, name: string, labels: string): number =>
      Number(new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
    let peak = before;
    let slowest = 0;
    let stoppedAt = 0;
    let replacedAfter: number | null = null;
    const t0 = performance.now();
    while (performance.now() - t0 < 12_000) {
      await new Promise((r) => setTimeout(r, 250));
      peak = Math.max(peak, rssMiB(v.pid));
      const { ms, text } = await scrape();
      slowest = Math.max(slowest, ms);
      if (stoppedAt === 0 && performance.now() - t0 > 3000) {
        process.kill(steady, "SIGSTOP");
        stoppedAt = performance.now();
      }
      if (stoppedAt > 0 && replacedAfter === null && value(text, "vigil_worker_restarts_total", 'program="steady",reason="hang"') >= 1) {
        replacedAfter = performance.now() - stoppedAt;
      }
    }
    const { text } = await scrape();
    const dropped = value(text, "vigil_worker_output_dropped_bytes_total", 'program="chatty"');
    v.child.stdout!.resume();
    expect(dropped, "bytes dropped while the log was stuck").to.be.above(1024 * 1024);
    expect(value(text, "vigil_worker_output_dropped_bytes_total", 'program="steady"')).to.equal(0);
    expect(peak - before, `RSS ${before.toFixed(1)} -> peak ${peak.toFixed(1)} MiB`).to.be.below(32);
    expect(slowest, "slowest scrape, ms").to.be.below(1000);
    // heartbeat_timeout 2 s, a stack-dump grace of 250 ms, and a loaded machine's slack.
    expect(replacedAfter, "the SIGSTOPped worker was declared hung").to.not.equal(null);
    expect(replacedAfter!).to.be.below(4000);
    // Once the log is read again, the episode was said once, in words.
    await v.waitFor(isMsg(/^chatty\/0\[\d+\] writes output faster than the log takes it/), 10_000);
  });
});
