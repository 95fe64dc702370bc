// What around vigild can fail: an unwritable state_dir, a metrics port in use.
import { expect } from "chai";
import { createServer, type Server } from "node:net";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Vigild, py, stopAll, type LogEntry } from "../../helpers/vigild.js";

const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);

describe("faults around vigild", function () {
  this.timeout(30_000);
  let server: Server | null = null;
  afterEach(async () => {
    await stopAll();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = null;
  });

  it("a state_dir it cannot write: the report failure is logged and the stop still keeps its deadlines", async () => {
    const v = new Vigild({
      state_dir: "/proc/vigil-cannot-write-here",
      programs: { web: { command: py("py_teardown_hang.py"), protocol: "on", shutdown: { handlers_timeout: "500ms", teardown_hang_after: "300ms", timeout: "1s" } } },
    });
    await v.waitFor(isMsg(/all 1 workers ready/));
    const t0 = Date.now();
    v.signal("SIGTERM");
    const { code } = await v.waitExit();
    expect(code).to.equal(0);
    expect(Date.now() - t0).to.be.below(3000);
    expect(v.logs.some(isMsg(/cannot write the stop marker in \/proc\/vigil-cannot-write-here/))).to.equal(true);
    const failed = v.logs.find(isMsg(/cannot write the last-shutdown report to \/proc\/vigil-cannot-write-here/));
    expect(failed?.level).to.equal("error");
    expect(v.logs.some(isMsg(/^stopped 1 worker in 1\.\d\d s: 1 forced/))).to.equal(true);
  });

  it("a state_dir that cannot be a directory (a file is in the way) is the same: logged, the stop completes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-state-"));
    const blocked = join(dir, "not-a-dir");
    writeFileSync(blocked, "");
    chmodSync(blocked, 0o444);
    const v = new Vigild({ state_dir: join(blocked, "state"), programs: { p: { command: ["sleep", "1000"] } } });
    await v.waitFor(isMsg(/all 1 workers ready/));
    v.signal("SIGTERM");
    expect((await v.waitExit()).code).to.equal(0);
    expect(v.logs.some(isMsg(/cannot write the last-shutdown report/))).to.equal(true);
  });

  it("a metrics port already in use is a clear start error naming the address", async () => {
    server = createServer();
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    const v = new Vigild({ metrics: { listen: `127.0.0.1:${port}` }, programs: { p: { command: ["sleep", "1000"] } } });
    const { code } = await v.waitExit();
    expect(code).to.equal(1);
    const fatal = v.logs.find(isMsg(/fatal/))!;
    expect(fatal.msg).to.equal(`fatal: cannot listen for metrics on 127.0.0.1:${port}: address already in use`);
    expect(v.logs.some(isMsg(/ spawned$/))).to.equal(false);
  });
});
