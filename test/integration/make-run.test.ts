// `make run`, as the README promises: vigild in the foreground on the bundled
// example, live workers, metrics on 127.0.0.1:9850, a clean stop on Ctrl-C.
import { expect } from "chai";
import { spawn } from "node:child_process";
import { REPO, isAlive, killGroup, sampleValue } from "../helpers/vigild.js";

describe("make run", function () {
  this.timeout(120_000);

  it("serves HTTP on 8080 (gunicorn) and 8081 (Node), /metrics with live Python, Node and plain workers, and stops cleanly on Ctrl-C", async () => {
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
          if (sampleValue(text, "vigil_workers", { program: "py-app", state: "running" }) === 2 && /all 6 workers ready/.test(out)) break;
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
      expect(pids).to.have.length(6);
      expect(sampleValue(text, "vigil_workers", { program: "web", state: "running" })).to.equal(2);
      // gunicorn may still be importing the app when vigild counts it ready: give it a moment.
      const get = async (url: string): Promise<string> => {
        const deadline = Date.now() + 20_000;
        for (;;) {
          try {
            return await (await fetch(url)).text();
          } catch (err) {
            if (Date.now() > deadline) throw err;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      };
      expect(await get("http://127.0.0.1:8080/")).to.match(/^hello from gunicorn pid \d+ \(vigil worker [01]\)/);
      expect(await get("http://127.0.0.1:8081/")).to.match(/^hello from node pid \d+ \(vigil worker 0\)/);
      // Ctrl-C reaches the terminal's whole foreground process group.
      process.kill(-make.pid!, "SIGINT");
      await exited;
      expect(out).to.match(/stopped 6 workers in \d+\.\d\d s: 6 clean/);
      for (const pid of pids) expect(isAlive(pid), `worker ${pid}`).to.equal(false);
    } finally {
      killGroup(make.pid!);
      await exited;
    }
  });
});
