// The whole control path, all real: a vigild with real workers serving
// org.vigil.Supervisor1 on a private dbus-daemon, vigilctl as a process, a
// dbus-next subscriber for the signals.
import { expect } from "chai";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fsSync from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dbus from "dbus-next";
import { REPO, Vigild, py, stopAll, type LogEntry } from "../../helpers/vigild.js";
import { PrivateBus } from "../../helpers/private-bus.js";

const VIGILCTL = join(REPO, "dist/daemon/ctl/main.js");
const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);

describe("vigild on D-Bus, driven by vigilctl (real bus, real workers)", function () {
  this.timeout(60_000);
  let bus: PrivateBus;

  beforeEach(async () => {
    bus = await PrivateBus.start();
  });
  afterEach(async () => {
    await stopAll();
    await bus.stop();
  });

  function ctl(...args: string[]): { code: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [VIGILCTL, "--bus", "session", ...args], {
      encoding: "utf8",
      timeout: 30_000,
      env: { PATH: process.env.PATH, DBUS_SESSION_BUS_ADDRESS: bus.address },
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  function start(programs: Record<string, unknown>): Vigild {
    return new Vigild({ dbus: { bus: "session" }, programs }, { env: { DBUS_SESSION_BUS_ADDRESS: bus.address } });
  }

  it("vigilctl status shows the real workers, as a table and as JSON", async () => {
    const v = start({ web: { command: py("py_ok.py", "--status", "serving"), protocol: "on", instances: 2 }, plain: { command: ["sleep", "1000"] } });
    await v.waitFor(isMsg(/D-Bus: serving org\.vigil\.Supervisor1/));
    await v.waitFor(isMsg(/all 3 workers ready/));
    await v.waitForCount(isMsg(/status: serving/), 2);
    const json = ctl("status", "--json");
    expect(json.code, json.stderr).to.equal(0);
    const snap = JSON.parse(json.stdout) as { state: string; workers: Array<{ program: string; pid: number; state: string; status: string | null; lastHeartbeatAgeMs: number | null }> };
    expect(snap.state).to.equal("running");
    const web = snap.workers.filter((w) => w.program === "web");
    expect(web.map((w) => w.state)).to.deep.equal(["running", "running"]);
    expect(web.every((w) => w.status === "serving")).to.equal(true);
    expect(web.every((w) => w.lastHeartbeatAgeMs !== null && w.lastHeartbeatAgeMs < 10_000)).to.equal(true);
    const plain = snap.workers.find((w) => w.program === "plain")!;
    expect(plain.lastHeartbeatAgeMs).to.equal(null);
    const table = ctl("status");
    expect(table.code).to.equal(0);
    for (const w of snap.workers) expect(table.stdout).to.contain(String(w.pid));
    expect(table.stdout).to.match(/PROGRAM\s+WORKER\s+STATE\s+PID/);
  });

  it("vigilctl restart replaces a program's workers rolling; an unknown program is a clear error", async () => {
    const v = start({ web: { command: py("py_ok.py", "--handler"), protocol: "on", instances: 2 } });
    await v.waitFor(isMsg(/D-Bus: serving/));
    const ready = await v.waitForCount(isMsg(/^web\/\d.* ready after/), 2);
    const r = ctl("restart", "web");
    expect(r.code, r.stderr).to.equal(0);
    for (const old of ready) {
      // vigilctl returns once the old workers are gone; their log lines may trail by a moment.
      const exit = await v.waitFor((e) => e.pid === old.pid && typeof e.outcome === "string", 5000);
      expect(exit.outcome).to.equal("clean");
      expect(v.logs.some((e) => e.pid === old.pid && /reason=restart /.test(e.msg))).to.equal(true);
    }
    expect(await v.metric("vigil_worker_restarts_total", { program: "web", reason: "restart" })).to.equal(2);
    const unknown = ctl("restart", "nope");
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.contain('no program named "nope"');
    expect(ctl("status").code).to.equal(0);
  });

  it("vigilctl reload applies a good file and reports a broken one, keeping the configuration", async () => {
    const v = start({ web: { command: py("py_ok.py"), protocol: "on" } });
    await v.waitFor(isMsg(/D-Bus: serving/));
    await v.waitFor(isMsg(/all 1 workers ready/));
    const { readFileSync, writeFileSync } = await import("node:fs");
    const good = readFileSync(v.configPath, "utf8");
    writeFileSync(v.configPath, `${good}\n`.replace("programs:\n", "programs:\n  extra:\n    command: [sleep, \"1000\"]\n"));
    const ok = ctl("reload");
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.contain("added extra");
    writeFileSync(v.configPath, "programs: [\n");
    const bad = ctl("reload");
    expect(bad.code).to.equal(1);
    expect(bad.stderr + bad.stdout).to.match(new RegExp(`${v.configPath}:\\d+:`));
    expect(await v.metric("vigil_workers", { program: "extra", state: "running" })).to.equal(1);
  });

  it("signals WorkerHung and WorkerExited reach a subscriber when a real worker hangs", async () => {
    const v = start({ wedged: { command: py("py_stop_heartbeat.py", "--after", "0.3"), protocol: "on", heartbeat_timeout: "1s", restart: { policy: "never" } } });
    await v.waitFor(isMsg(/D-Bus: serving/));
    const client = dbus.sessionBus({ busAddress: bus.address });
    try {
      const obj = await client.getProxyObject("org.vigil.Supervisor1", "/org/vigil/Supervisor1");
      const iface = obj.getInterface("org.vigil.Supervisor1");
      const hung = new Promise<unknown[]>((resolve) => iface.on("WorkerHung", (...args: unknown[]) => resolve(args)));
      const exited = new Promise<unknown[]>((resolve) => iface.on("WorkerExited", (...args: unknown[]) => resolve(args)));
      const [program, worker, pid, phase, after] = await hung;
      expect([program, worker, phase]).to.deep.equal(["wedged", 0, "running"]);
      expect(Number(after)).to.be.within(1000, 1100);
      const [xprogram, , xpid, code, signal] = await exited;
      expect([xprogram, xpid, code, signal]).to.deep.equal(["wedged", pid, -1, "SIGKILL"]);
    } finally {
      client.disconnect();
    }
  });

  it("vigilctl last-shutdown prints the report of the previous stop", async () => {
    const programs = { web: { command: py("py_teardown_hang.py"), protocol: "on", shutdown: { handlers_timeout: "300ms", teardown_hang_after: "300ms", timeout: "1s" } } };
    const first = start(programs);
    await first.waitFor(isMsg(/all 1 workers ready/));
    first.signal("SIGTERM");
    await first.waitExit();
    const second = new Vigild({ dbus: { bus: "session" }, state_dir: join(first.dir, "state"), programs }, { env: { DBUS_SESSION_BUS_ADDRESS: bus.address } });
    await second.waitFor(isMsg(/D-Bus: serving/));
    const human = ctl("last-shutdown");
    expect(human.code, human.stderr).to.equal(0);
    expect(human.stdout).to.match(/stopped 1 worker in 1\.\d\d s: 1 forced \(teardown hang: web\/0\)/);
    const json = JSON.parse(ctl("last-shutdown", "--json").stdout) as { workers: Array<{ outcome: string; hang: string }> };
    expect(json.workers[0]).to.include({ outcome: "forced", hang: "teardown" });
  });

  it("vigilctl says vigild is not running (exit 3) when nothing owns the name", () => {
    const r = ctl("status");
    expect(r.code).to.equal(3);
    expect(r.stderr).to.contain("vigild is not running");
  });
});

describe("vigild and a D-Bus daemon that restarts", function () {
  this.timeout(60_000);
  const { mkdtempSync, writeFileSync, rmSync } = fsSync;
  let dir: string;
  let busProc: ChildProcess | null = null;

  async function startBus(socket: string): Promise<void> {
    const config = join(dir, "bus.conf");
    writeFileSync(
      config,
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=${socket}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>`,
    );
    busProc = spawn("dbus-daemon", ["--config-file", config, "--nofork", "--print-address=1"], { stdio: ["ignore", "pipe", "ignore"] });
    await new Promise<void>((resolve, reject) => {
      busProc!.stdout!.once("data", () => resolve());
      busProc!.once("exit", (code) => reject(new Error(`dbus-daemon exited ${code}`)));
    });
  }

  async function stopBus(): Promise<void> {
    const p = busProc;
    busProc = null;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once("exit", r));
    p.kill("SIGKILL");
    await gone;
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "vigil-bus-restart-"));
  });
  afterEach(async () => {
    await stopAll();
    await stopBus();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reconnects and owns its name again when the bus comes back", async () => {
    const socket = join(dir, "bus");
    const address = `unix:path=${socket}`;
    await startBus(socket);
    const v = new Vigild({ dbus: { bus: "session" }, programs: { p: { command: ["sleep", "1000"] } } }, { env: { DBUS_SESSION_BUS_ADDRESS: address } });
    await v.waitFor((e) => /D-Bus: serving/.test(e.msg));
    await stopBus();
    await v.waitFor((e) => /D-Bus connection lost.*reconnecting/.test(e.msg));
    rmSync(socket, { force: true });
    await startBus(socket);
    await v.waitFor((e) => /D-Bus: reconnected/.test(e.msg), 20_000);
    const r = spawnSync(process.execPath, [VIGILCTL, "--bus", "session", "status", "--json"], {
      encoding: "utf8",
      env: { PATH: process.env.PATH, DBUS_SESSION_BUS_ADDRESS: address },
    });
    expect(r.status, r.stderr).to.equal(0);
    expect((JSON.parse(r.stdout) as { state: string }).state).to.equal("running");
  });
});
