// A starved CPU is not a hung worker.
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { cpuPressure, parseCpuPressure, starvationSuspected, STARVATION_PRESSURE } from "../../../daemon/worker/starvation.js";
import { Vigild, killGroup, py, stopAll, type LogEntry } from "../../helpers/vigild.js";

/** PSI's cumulative `some` stall time (µs) and when it was read (µs on the monotonic clock). */
function cpuStall(): { totalUs: number; atUs: number } {
  const match = /^some .* total=(\d+)$/m.exec(readFileSync("/proc/pressure/cpu", "utf8"));
  if (!match) throw new Error("no `some ... total=` line in /proc/pressure/cpu");
  return { totalUs: Number(match[1]), atUs: Number(process.hrtime.bigint() / 1000n) };
}

describe("CPU starvation", function () {
  this.timeout(90_000);

  it("reads PSI's some avg10", () => {
    expect(parseCpuPressure("some avg10=37.50 avg60=12.00 avg300=3.10 total=123\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")).to.equal(37.5);
    expect(parseCpuPressure("")).to.equal(null);
  });

  it("excuses a miss once under pressure, never for a stopped worker or without PSI", () => {
    const high = STARVATION_PRESSURE + 10;
    expect(starvationSuspected({ pressure: high, state: "R", extended: false })).to.equal(true);
    expect(starvationSuspected({ pressure: high, state: "S", extended: false })).to.equal(true);
    expect(starvationSuspected({ pressure: high, state: "R", extended: true })).to.equal(false);
    expect(starvationSuspected({ pressure: high, state: "T", extended: false })).to.equal(false);
    expect(starvationSuspected({ pressure: 1, state: "R", extended: false })).to.equal(false);
    expect(starvationSuspected({ pressure: null, state: "R", extended: false })).to.equal(false);
  });

  describe("with every core saturated", () => {
    const burners: ChildProcess[] = [];
    afterEach(async () => {
      for (const b of burners.splice(0)) if (b.pid) killGroup(b.pid);
      await stopAll();
    });

    it("a healthy heartbeating worker is not declared hung while busy processes hold every core for 20 s", async function () {
      // Without PSI there is no pressure to check and vigild has nothing to excuse a miss with.
      if (!existsSync("/proc/pressure/cpu")) {
        console.log("      SKIPPED: /proc/pressure/cpu does not exist on this kernel (PSI off): CPU starvation cannot be checked here");
        this.skip();
      }
      const v = new Vigild({ programs: { web: { command: py("py_ok.py"), protocol: "on", instances: 2, heartbeat_timeout: "2s" } } });
      await v.waitForCount((e: LogEntry) => / ready after /.test(e.msg), 2);
      const before = cpuPressure();
      // Twice as many busy loops as cores: some runnable task always waits, however many cores there are.
      const cores = availableParallelism();
      for (let i = 0; i < 2 * cores; i++) {
        burners.push(spawn("python3", ["-c", "while True: pass"], { stdio: "ignore", detached: true }));
      }
      const start = cpuStall();
      await new Promise((r) => setTimeout(r, 20_000));
      const end = cpuStall();
      const during = cpuPressure();
      // The premise, as vigild measures it: a task waited for a CPU nearly all of the 20 s,
      // and PSI's 10 s average (what vigild reads) is past the level at which it excuses a miss.
      const stalledShare = (100 * (end.totalUs - start.totalUs)) / (end.atUs - start.atUs);
      const what = `${2 * cores} busy loops on ${cores} cores; some avg10 before them ${before}%`;
      expect(stalledShare, `share of the 20 s with a task waiting for a CPU (%), ${what}`).to.be.at.least(80);
      expect(during, `CPU pressure some avg10 (%) at the end, ${what}`).to.be.at.least(STARVATION_PRESSURE);
      expect(v.logs.filter((e) => e.phase === "running")).to.deep.equal([]);
      // No worker was replaced: still the two first spawned.
      expect(v.logs.filter((e) => / spawned$/.test(e.msg))).to.have.length(2);
    });
  });
});
