// A starved CPU is not a hung worker.
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { parseCpuPressure, starvationSuspected, STARVATION_PRESSURE } from "../../daemon/worker/starvation.js";
import { Vigild, killGroup, py, stopAll, type LogEntry } from "../helpers/vigild.js";

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

  describe("with both cores saturated", () => {
    const burners: ChildProcess[] = [];
    afterEach(async () => {
      for (const b of burners.splice(0)) if (b.pid) killGroup(b.pid);
      await stopAll();
    });

    it("a healthy heartbeating worker is not declared hung while busy processes hold every core for 20 s", async () => {
      const v = new Vigild({ programs: { web: { command: py("py_ok.py"), protocol: "on", instances: 2, heartbeat_timeout: "2s" } } });
      await v.waitForCount((e: LogEntry) => / ready after /.test(e.msg), 2);
      for (let i = 0; i < 4; i++) {
        burners.push(spawn("python3", ["-c", "while True: pass"], { stdio: "ignore", detached: true }));
      }
      await new Promise((r) => setTimeout(r, 20_000));
      expect(v.logs.filter((e) => e.phase === "running")).to.deep.equal([]);
      // No worker was replaced: still the two first spawned.
      expect(v.logs.filter((e) => / spawned$/.test(e.msg))).to.have.length(2);
    });
  });
});
