// A worker that is just `yes`, under a real systemd and journald, for 60 s:
// each worker writes its own journal stream (vigild is not in the data path),
// so vigild's memory stays flat, a SIGSTOPped heartbeat worker beside it is
// replaced on time, the watchdog keeps vigild alive (NRestarts 0) and every
// scrape answers at once.
import { expect } from "chai";
import { SRC, containerForSuite } from "./container.js";

const UNIT = "vigil.service";
const FLOOD_MS = Number(process.env.VIGIL_FLOOD_MS ?? 60_000);

describe("a flooding worker under a real systemd (system tests)", function () {
  this.timeout(FLOOD_MS + 120_000);
  const ct = containerForSuite();

  it("yes for 60 s: vigild's RSS flat, a hung worker replaced within 2.5 s, NRestarts 0, scrapes under 1 s, nothing dropped by vigild", async () => {
    const cursor = await ct().cursor();
    await ct().writeFile(
      "/etc/vigil/vigil.yaml",
      `metrics:
  listen: 127.0.0.1:0
programs:
  chatty:
    command: [yes, a line of output from a worker that never stops talking]
    protocol: "off"
  steady:
    command: [/usr/bin/python3, ${SRC}/test/fixtures/workers/py_ok.py]
    protocol: "on"
    heartbeat_timeout: 2s
    restart: { backoff_initial: "0" }
`,
    );
    // A 2 s watchdog: a vigild that the flood made late would be killed and restarted.
    await ct().writeFile("/etc/systemd/system/vigil.service.d/watchdog.conf", "[Service]\nWatchdogSec=2s\n");
    await ct().run(["systemctl", "daemon-reload"]);
    await ct().run(["systemctl", "start", UNIT], { timeoutMs: 60_000 });
    try {
      const main = Number((await ct().show(UNIT, ["MainPID"])).MainPID);
      const entries = await ct().journalEntries(UNIT, { afterCursor: cursor });
      const url = /metrics on (\S+)/.exec(entries.map((e) => e.MESSAGE).join("\n"))?.[1];
      expect(url, "the metrics address in the journal").to.be.a("string");
      const steady = Number(/steady\/0\[(\d+)\] spawned/.exec(entries.map((e) => e.MESSAGE).join("\n"))?.[1]);
      const rss = async (): Promise<number> => Number(/^VmRSS:\s+(\d+)/m.exec(await ct().run(["cat", `/proc/${main}/status`]))?.[1]) / 1024;
      const scrape = async (): Promise<{ ms: number; text: string }> => {
        const t0 = performance.now();
        const text = await (await fetch(url!, { signal: AbortSignal.timeout(5000) })).text();
        return { ms: performance.now() - t0, text };
      };
      const hangs = (text: string): number => Number(/^vigil_worker_restarts_total\{program="steady",reason="hang"\} (\S+)$/m.exec(text)?.[1] ?? NaN);

      const before = await rss();
      let peak = before;
      let slowest = 0;
      let stoppedAt = 0;
      let replacedAfter: number | null = null;
      const t0 = performance.now();
      while (performance.now() - t0 < FLOOD_MS) {
        await new Promise((r) => setTimeout(r, stoppedAt > 0 && replacedAfter === null ? 50 : 500));
        const { ms, text } = await scrape();
        slowest = Math.max(slowest, ms);
        peak = Math.max(peak, await rss());
        if (stoppedAt === 0 && performance.now() - t0 > FLOOD_MS / 2) {
          await ct().run(["kill", "-STOP", String(steady)]);
          stoppedAt = performance.now();
        } else if (stoppedAt > 0 && replacedAfter === null && hangs(text) >= 1) {
          replacedAfter = performance.now() - stoppedAt;
        }
      }
      const { text } = await scrape();
      const show = await ct().show(UNIT, ["NRestarts", "MainPID", "ActiveState"]);
      console.log(
        `      RSS ${before.toFixed(1)} -> peak ${peak.toFixed(1)} MiB; slowest scrape ${slowest.toFixed(0)} ms; hung worker replaced after ${replacedAfter?.toFixed(0)} ms`,
      );
      expect(show.NRestarts).to.equal("0");
      expect(Number(show.MainPID)).to.equal(main);
      expect(show.ActiveState).to.equal("active");
      expect(peak - before, "RSS growth, MiB").to.be.below(32);
      expect(slowest, "slowest scrape, ms").to.be.below(1000);
      expect(replacedAfter, "the SIGSTOPped worker was declared hung").to.not.equal(null);
      // 2 s heartbeat_timeout + 250 ms stack-dump grace + the 50 ms poll.
      expect(replacedAfter!).to.be.below(2500 + 100);
      expect(/^vigil_worker_output_dropped_bytes_total\{program="chatty"\} 0$/m.test(text), "vigild dropped nothing: it is not in the path").to.equal(true);
      // The flood is in the journal, under the worker's identifier and its own pid.
      const chattyPid = Number(/chatty\/0\[(\d+)\] spawned/.exec(entries.map((e) => e.MESSAGE).join("\n"))?.[1]);
      const lines = await ct().run(["journalctl", "--no-pager", "-q", "-o", "json", "-n", "5", "SYSLOG_IDENTIFIER=chatty/0"]);
      const last = lines.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(last.length).to.be.above(0);
      for (const e of last) {
        expect(e.MESSAGE).to.equal("a line of output from a worker that never stops talking");
        expect(Number(e._PID)).to.equal(chattyPid);
        expect(e._SYSTEMD_UNIT).to.equal(UNIT);
      }
    } finally {
      await ct().exec(["systemctl", "stop", UNIT], { timeoutMs: 60_000 });
      await ct().sh("rm -rf /etc/systemd/system/vigil.service.d; systemctl daemon-reload");
    }
  });
});
