// `make run`, as the README promises: vigild in the foreground on the bundled
// example, live workers, metrics on 127.0.0.1:9850, a clean stop on Ctrl-C.
import { expect } from "chai";
import { spawn } from "node:child_process";
import { REPO, isAlive, killGroup, sampleValue } from "./helpers/vigild.js";

describe("make run", function () {
  this.timeout(120_000);

  it("serves /metrics with live Python, Node and plain workers, and stops cleanly on Ctrl-C", async () => {
    const make = spawn("make", ["--no-print-directory", "run"], { cwd: REPO, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    make.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    make.stderr!.on("data", (c: Buffer) => (out += c.toString()));
    const exited = new Promise<void>((resolve) => make.once("exit", () => resolve()));
    try {
      let text = "";
      const until = Date.now() + 90_000;
      for (;;) {
        try {
          text = await (await fetch("http://127.0.0.1:9850/metrics")).text();
          if (sampleValue(text, "vigil_workers", { program: "py-app", state: "running" }) === 2 && /all 4 workers ready/.test(out)) break;
        } catch {
          // Not listening yet: make may still be building.
        }
        if (Date.now() > until) throw new Error(`no live workers on :9850 within 90 s; output:\n${out}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(sampleValue(text, "vigil_workers", { program: "node-app", state: "running" })).to.equal(1);
      expect(sampleValue(text, "vigil_workers", { program: "ticker", state: "running" })).to.equal(1);
      expect(sampleValue(text, "process_resident_memory_bytes")).to.be.greaterThan(0);
      const pids = [...out.matchAll(/ spawned program=\S+ worker=\d+ pid=(\d+)/g)].map((m) => Number(m[1]));
      expect(pids).to.have.length(4);
      // Ctrl-C reaches the terminal's whole foreground process group.
      process.kill(-make.pid!, "SIGINT");
      await exited;
      expect(out).to.match(/stopped 4 workers in \d+\.\d\d s: 4 clean/);
      for (const pid of pids) expect(isAlive(pid), `worker ${pid}`).to.equal(false);
    } finally {
      killGroup(make.pid!);
      await exited;
    }
  });
});
