// `vigilctl logs` under a real systemd and journald: the workers write their
// own journal streams (identifier PROGRAM/INDEX), and vigilctl logs shows a
// program's or one worker's lines through journalctl, with the worker's pid,
// by priority, the last N, and following new lines.
import { expect } from "chai";
import { containerForSuite, sleep } from "./container.js";

const UNIT = "vigil.service";

describe("vigilctl logs under a real systemd (system tests)", function () {
  this.timeout(180_000);
  const ct = containerForSuite();
  let pids: Record<string, number> = {};

  before(async function () {
    this.timeout(120_000);
    await ct().writeFile(
      "/etc/vigil/vigil.yaml",
      `metrics:
  listen: 127.0.0.1:0
programs:
  talker:
    command: [/bin/sh, -c, 'echo "hello from worker $VIGIL_WORKER"; echo "<3>trouble in worker $VIGIL_WORKER"; i=0; while :; do i=$((i+1)); echo "tick $i from $VIGIL_WORKER"; sleep 0.5; done']
    instances: 2
    protocol: "off"
  other:
    command: [/bin/sh, -c, 'echo "other says hi"; exec sleep infinity']
    protocol: "off"
`,
    );
    await ct().run(["systemctl", "start", UNIT], { timeoutMs: 60_000 });
    const status = JSON.parse(await ct().run(["vigilctl", "status", "--json"])) as { workers: Array<{ program: string; worker: number; pid: number }> };
    pids = Object.fromEntries(status.workers.map((w) => [`${w.program}/${w.worker}`, w.pid]));
    // Let each worker print a few ticks.
    await sleep(2000);
  });

  const logs = async (...args: string[]): Promise<string[]> => {
    const out = await ct().run(["vigilctl", "logs", ...args]);
    return out.split("\n").filter((line) => line !== "" && !line.startsWith("-- "));
  };

  it("a program: every worker's lines, as journalctl shows them, with each worker's own pid", async function () {
    const lines = await logs("talker");
    expect(lines.some((l) => l.includes(`talker/0[${pids["talker/0"]}]: hello from worker 0`)), lines.join("\n")).to.equal(true);
    expect(lines.some((l) => l.includes(`talker/1[${pids["talker/1"]}]: hello from worker 1`)), lines.join("\n")).to.equal(true);
    expect(lines.some((l) => l.includes("tick 3 from 1"))).to.equal(true);
    expect(lines.every((l) => / talker\/[01]\[\d+\]: /.test(l)), "only talker's lines").to.equal(true);
    expect(await logs("other")).to.have.length(1);
  });

  it("one worker", async function () {
    const lines = await logs("talker", "1");
    expect(lines.length).to.be.above(3);
    expect(lines.every((l) => l.includes(`talker/1[${pids["talker/1"]}]: `)), lines.join("\n")).to.equal(true);
  });

  it("-p: by priority, as the worker gave it (<3> is err)", async function () {
    const lines = await logs("talker", "-p", "err");
    expect(lines.map((l) => l.slice(l.indexOf(": ") + 2)).sort()).to.deep.equal(["trouble in worker 0", "trouble in worker 1"]);
  });

  it("-n: the last lines", async function () {
    const lines = await logs("talker", "0", "-n", "2");
    expect(lines).to.have.length(2);
    expect(lines.every((l) => / talker\/0\[\d+\]: tick \d+ from 0$/.test(l)), lines.join("\n")).to.equal(true);
  });

  it("-f: follows new lines until interrupted", async function () {
    const tick = (l: string): number => Number(/tick (\d+) from 0$/.exec(l)?.[1] ?? -1);
    const last = Math.max(...(await logs("talker", "0")).map(tick));
    // SIGINT after 3 s, as Ctrl-C would: vigilctl exits 0 with journalctl.
    const r = await ct().exec(["timeout", "--preserve-status", "-s", "INT", "3", "vigilctl", "logs", "talker", "0", "-f", "-n", "1"]);
    expect(r.code, r.stderr).to.equal(0);
    const followed = r.stdout.split("\n").map(tick).filter((n) => n > last);
    expect(followed.length, r.stdout).to.be.above(2);
  });

  it("a program vigild does not run and the journal has not seen: exit 1, saying so", async function () {
    const r = await ct().exec(["vigilctl", "logs", "nope"]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^vigilctl: no output of program "nope" in the journal, and vigild runs no such program\n/);
  });
});
