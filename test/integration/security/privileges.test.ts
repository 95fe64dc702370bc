// user: drops privileges fully (uid, gid and the user's supplementary groups,
// as systemd's User= does), a worker's environment is exactly the configured
// one plus VIGIL_* and PATH, and no environment value reaches vigild's log.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { Vigild, py, stopAll, type LogEntry } from "../../helpers/vigild.js";

const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);

describe("worker privileges and environment", function () {
  this.timeout(30_000);
  afterEach(stopAll);

  it("user: runs the worker as that user, with that user's groups and none of vigild's", async function () {
    if (process.getuid?.() !== 0) {
      console.log("    (skipped: user: needs vigild to run as root, and this test is not root)");
      this.skip();
    }
    const expected = spawnSync("id", ["nobody"], { encoding: "utf8" }).stdout.trim();
    const v = new Vigild({ programs: { who: { command: ["id"], user: "nobody", restart: { policy: "never" } } } });
    const line = await v.waitFor(isMsg(/^uid=/));
    expect(line.msg).to.equal(expected);
    expect(line.msg).to.not.match(/\b0\(root\)/);
  });

  it("user: without root is a clear error, not a half-privileged worker", async function () {
    if (process.getuid?.() === 0) {
      // As root the check is the other way round; the pure function is tested here instead.
      const { dropPrivileges } = await import("../../../daemon/worker/user.js");
      expect(dropPrivileges(["id"], { uid: 65534, gid: 65534, name: "nobody", home: "/" }, 1000)).to.deep.equal({
        ok: false,
        error: "user: needs vigild to run as root",
      });
      return;
    }
    const v = new Vigild({ programs: { who: { command: ["id"], user: "nobody" } } });
    await v.waitFor(isMsg(/user: needs vigild to run as root/));
  });

  it("the environment is the configured one plus PATH and VIGIL_*: nothing of vigild's own", async () => {
    const v = new Vigild(
      { programs: { show: { command: ["env"], protocol: "off", env: { APP_ENV: "production" }, restart: { policy: "never" } } } },
      { env: { SECRET_TOKEN: "hunter2", HOME: "/root" } },
    );
    await v.waitFor(isMsg(/^show\/0.* exited with status 0/));
    const names = v.logs.filter((e) => e.stream === "stdout").map((e) => e.msg.split("=")[0]).sort();
    expect(names).to.deep.equal(["APP_ENV", "PATH", "VIGIL_PROGRAM", "VIGIL_WORKER"]);
  });

  it("never logs an environment value, whatever happens to the worker", async () => {
    const secret = "k3y-0f-the-kingdom";
    const v = new Vigild({
      programs: {
        crashy: { command: py("py_crash.py", "--after", "0.2"), protocol: "on", env: { API_KEY: secret }, restart: { limit: "2 in 60s" } },
        hung: { command: py("py_stop_heartbeat.py", "--after", "0.2"), protocol: "on", env: { API_KEY: secret }, heartbeat_timeout: "500ms" },
      },
    });
    await v.waitFor(isMsg(/program crashy FAILED/), 15_000);
    await v.waitFor((e) => e.phase === "running", 10_000);
    v.signal("SIGTERM");
    await v.waitExit();
    expect(v.rawLines.filter((l) => l.includes(secret))).to.deep.equal([]);
    expect(v.stderr).to.not.contain(secret);
  });
});
