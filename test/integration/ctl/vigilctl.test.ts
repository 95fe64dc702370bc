// The built vigilctl as a real process, against the D-Bus service on a
// private dbus-daemon. Every vigilctl and dbus-daemon started here is killed
// by pid in the after hooks, pass or fail.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { expect } from "chai";
import { formatLastShutdown, formatStatus } from "../../../daemon/ctl/format.js";
import { startDbusService, type DbusService } from "../../../daemon/dbus/service.js";
import { FakeControl, sampleReport } from "../../helpers/fake-control.js";
import { PrivateBus } from "../../helpers/private-bus.js";
import { REPO } from "../../helpers/repo.js";

const VIGILCTL = join(REPO, "dist/daemon/ctl/main.js");
const RUN_TIMEOUT_MS = 15_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();

function killLeftovers(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, "SIGKILL");
  }
  children.clear();
}

/** Run vigilctl with only the environment given (plus PATH); never blocks this process's event loop. */
function vigilctl(args: string[], env: Record<string, string>): Promise<Run> {
  return run(process.execPath, [VIGILCTL, ...args], env);
}

function run(command: string, args: string[], env: Record<string, string>): Promise<Run> {
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      process.kill(child.pid!, "SIGKILL");
      fail(new Error(`vigilctl ${args.join(" ")} did not exit within ${RUN_TIMEOUT_MS} ms; stderr: ${stderr}`));
    }, RUN_TIMEOUT_MS);
    child.once("error", fail);
    child.once("close", (code) => {
      clearTimeout(timer);
      children.delete(child);
      done({ code, stdout, stderr });
    });
  });
}

const silent = { info: (): void => undefined, warn: (): void => undefined };

describe("vigilctl against vigild's D-Bus service", function () {
  let bus: PrivateBus;
  let control: FakeControl;
  let service: DbusService;
  let env: Record<string, string>;
  const session = (...args: string[]): Promise<Run> => vigilctl(["--bus", "session", ...args], env);

  before(async function () {
    bus = await PrivateBus.start();
    control = new FakeControl();
    service = await startDbusService(control, { bus: "session", address: bus.address, log: silent });
    env = { DBUS_SESSION_BUS_ADDRESS: bus.address };
  });

  after(async function () {
    killLeftovers();
    await service?.close();
    await bus?.stop();
  });

  it("status prints vigild's state, the programs and a table of workers", async function () {
    const run = await session("status");
    expect(run.stderr).to.equal("");
    expect(run.code).to.equal(0);
    expect(run.stdout).to.equal(formatStatus(control.status()));
    const lines = run.stdout.split("\n");
    expect(lines[0]).to.equal("vigild 0.1.0, pid 4242, /etc/vigil/vigil.yaml: running");
    expect(lines[1]).to.equal("status: running: 3/3 workers ready");
    expect(lines).to.include("batch    FAILED   0/1    destroy      crash=11");
    expect(lines).to.include("PROGRAM  WORKER  STATE    PID   UPTIME  RESTARTS  HEARTBEAT  STATUS");
    expect(lines).to.include("web      0       running  1001  3m12s   0         120ms      serving 12 req/s");
    expect(lines).to.include("batch    0       failed   -     -       11        -          -");
  });

  it("status --json prints the StatusSnapshot", async function () {
    const run = await session("status", "--json");
    expect(run.code).to.equal(0);
    expect(JSON.parse(run.stdout)).to.deep.equal(control.status());
  });

  it("takes the bus from VIGIL_BUS", async function () {
    const run = await vigilctl(["status", "--json"], { ...env, VIGIL_BUS: "session" });
    expect(run.code).to.equal(0);
    expect((JSON.parse(run.stdout) as { pid: number }).pid).to.equal(4242);
  });

  it("defaults to the system bus at DBUS_SYSTEM_BUS_ADDRESS", async function () {
    const run = await vigilctl(["status", "--json"], { DBUS_SYSTEM_BUS_ADDRESS: bus.address });
    expect(run.code).to.equal(0);
    expect((JSON.parse(run.stdout) as { state: string }).state).to.equal("running");
  });

  it("restart PROGRAM restarts it and exits 0", async function () {
    const run = await session("restart", "web");
    expect(run).to.deep.equal({ code: 0, stdout: "restarted web\n", stderr: "" });
    expect(control.restarted).to.include("web");
  });

  it("restart of an unknown program exits 1 with vigild's message", async function () {
    const run = await session("restart", "nope");
    expect(run).to.deep.equal({ code: 1, stdout: "", stderr: 'vigilctl: no program named "nope"\n' });
  });

  it("restart that fails in vigild exits 1 with the reason", async function () {
    control.failingProgram = "plain";
    try {
      const run = await session("restart", "plain");
      expect(run).to.deep.equal({
        code: 1,
        stdout: "",
        stderr: "vigilctl: restart failed: worker plain/0 did not become ready within 30s\n",
      });
    } finally {
      control.failingProgram = null;
    }
  });

  it("reload prints the summary and exits 0", async function () {
    control.reloadResult = { ok: true, summary: "reloaded: 3 programs, 1 changed" };
    const run = await session("reload");
    expect(run).to.deep.equal({ code: 0, stdout: "reloaded: 3 programs, 1 changed\n", stderr: "" });
  });

  it("a failed reload prints the errors and exits 1", async function () {
    control.reloadResult = {
      ok: false,
      errors: ["vigil.yaml:3: programs.web.instances: expected a number", "vigil.yaml:9: programs.x: unknown key"],
    };
    const run = await session("reload");
    expect(run).to.deep.equal({
      code: 1,
      stdout: "",
      stderr:
        "reload failed; vigild keeps the previous configuration:\n" +
        "vigil.yaml:3: programs.web.instances: expected a number\n" +
        "vigil.yaml:9: programs.x: unknown key\n",
    });
  });

  it("last-shutdown says so when there is no report (human and --json)", async function () {
    control.report = null;
    expect(await session("last-shutdown")).to.deep.equal({
      code: 0,
      stdout: "no previous shutdown recorded\n",
      stderr: "",
    });
    expect(await session("last-shutdown", "--json")).to.deep.equal({ code: 0, stdout: "null\n", stderr: "" });
  });

  it("last-shutdown prints the summary, the times and a row per worker", async function () {
    control.report = sampleReport();
    const run = await session("last-shutdown");
    expect(run.code).to.equal(0);
    expect(run.stdout).to.equal(formatLastShutdown(sampleReport()));
    const lines = run.stdout.split("\n");
    expect(lines[0]).to.equal("stopped 3 workers in 5.3s: 1 clean, 1 skipped, 1 forced (1 teardown hang)");
    expect(lines[1]).to.equal("started 2025-01-02T03:04:05.000Z, ended 2025-01-02T03:04:10.250Z (5.25s)");
    expect(lines).to.include("PROGRAM/WORKER  OUTCOME  HANG      HANDLERS  TEARDOWN  TOTAL  EXIT");
    expect(lines).to.include("web/0           forced   teardown  40ms      4.955s    5.01s  SIGKILL");
    expect(lines).to.include("web/1           skipped  -         30ms      skipped   35ms   0");
  });

  it("last-shutdown --json prints the report as stored", async function () {
    control.report = sampleReport();
    const run = await session("last-shutdown", "--json");
    expect(run.code).to.equal(0);
    expect(JSON.parse(run.stdout)).to.deep.equal(sampleReport());
  });

  it("exits 2 on usage errors, without touching the bus", async function () {
    for (const args of [[], ["frobnicate"], ["restart"], ["reload", "--json"], ["--bus", "tcp", "status"], ["status", "-x"]]) {
      const run = await vigilctl(args, {});
      expect(run.code, args.join(" ")).to.equal(2);
      expect(run.stdout).to.equal("");
      expect(run.stderr).to.match(/^vigilctl: .+\nusage: vigilctl /);
    }
  });

  it("colours a terminal (unless NO_COLOR), never a pipe; the columns stay aligned", async function () {
    // script(1) gives vigilctl a real terminal for its stdout.
    const onTerminal = (extra: Record<string, string>): Promise<Run> =>
      run("script", ["-q", "-e", "-c", `${process.execPath} ${VIGILCTL} --bus session status`, "/dev/null"], { ...env, TERM: "xterm", ...extra });
    const tty = await onTerminal({});
    expect(tty.code, tty.stderr).to.equal(0);
    const text = tty.stdout.replace(/\r\n/g, "\n");
    expect(text).to.include("\x1b[32mrunning\x1b[0m");
    expect(text).to.include("batch    \x1b[1;31mFAILED\x1b[0m   0/1");
    expect(text.replace(/\x1b\[[0-9;]*m/g, "")).to.equal(formatStatus(control.status()));
    const noColor = await onTerminal({ NO_COLOR: "1" });
    expect(noColor.stdout.replace(/\r\n/g, "\n")).to.equal(formatStatus(control.status()));
    const piped = await session("status");
    expect(piped.stdout).to.not.include("\x1b[");
    const forced = await session("--color=always", "status");
    expect(forced.stdout).to.include("\x1b[32mrunning\x1b[0m");
  });

  it("--help for every command", async function () {
    for (const command of ["status", "restart", "reload", "last-shutdown", "logs", "help"]) {
      const run = await vigilctl([command, "--help"], {});
      expect(run.code, command).to.equal(0);
      expect(run.stdout, command).to.match(new RegExp(`^usage: vigilctl \\[--bus system\\|session\\] ${command}`));
    }
    expect((await vigilctl(["help", "logs"], {})).stdout).to.include("-f, --follow");
  });

  it("--help and --version", async function () {
    const help = await vigilctl(["--help"], {});
    expect(help.code).to.equal(0);
    expect(help.stdout).to.match(/^usage: vigilctl /);
    for (const command of ["status [--json]", "restart PROGRAM", "reload", "last-shutdown [--json]"]) {
      expect(help.stdout).to.include(command);
    }
    const version = await vigilctl(["--version"], {});
    expect(version).to.deep.equal({ code: 0, stdout: "vigilctl 0.1.0\n", stderr: "" });
  });
});

describe("vigilctl when vigild cannot be reached", function () {
  let bus: PrivateBus | null = null;

  after(async function () {
    killLeftovers();
    await bus?.stop();
  });

  it("exits 3 when the bus is up but nobody owns org.vigil.Supervisor1", async function () {
    bus = await PrivateBus.start();
    const session = await vigilctl(["--bus", "session", "status"], { DBUS_SESSION_BUS_ADDRESS: bus.address });
    expect(session).to.deep.equal({
      code: 3,
      stdout: "",
      stderr: "vigilctl: vigild is not running (no owner for org.vigil.Supervisor1 on the session bus)\n",
    });
    const system = await vigilctl(["restart", "web"], { DBUS_SYSTEM_BUS_ADDRESS: bus.address });
    expect(system.code).to.equal(3);
    expect(system.stderr).to.equal(
      "vigilctl: vigild is not running (no owner for org.vigil.Supervisor1 on the system bus)\n",
    );
  });

  it("exits 3 when the bus address is unreachable", async function () {
    const run = await vigilctl(["--bus", "session", "status"], {
      DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent/vigil-test-bus",
    });
    expect(run).to.deep.equal({
      code: 3,
      stdout: "",
      stderr:
        "vigilctl: vigild is not running (cannot connect to the session bus at unix:path=/nonexistent/vigil-test-bus: no such socket (ENOENT))\n",
    });
    const unset = await vigilctl(["--bus", "session", "status"], {});
    expect(unset.code).to.equal(3);
    expect(unset.stderr).to.equal(
      "vigilctl: vigild is not running (cannot connect to the session bus: DBUS_SESSION_BUS_ADDRESS is not set)\n",
    );
  });
});

describe("vigilctl when the bus goes away during a call", function () {
  let bus: PrivateBus | null = null;
  let service: DbusService | null = null;

  after(async function () {
    killLeftovers();
    await service?.close();
    await bus?.stop();
  });

  it("exits 1 instead of waiting forever", async function () {
    bus = await PrivateBus.start();
    const control = new FakeControl();
    let release!: () => void;
    control.restartGate = new Promise<void>((resolve) => {
      release = resolve;
    });
    service = await startDbusService(control, { bus: "session", address: bus.address, log: silent });
    const started = control.restartStarts();
    const run = vigilctl(["--bus", "session", "restart", "web"], { DBUS_SESSION_BUS_ADDRESS: bus.address });
    await started;
    await bus.stop();
    bus = null;
    expect(await run).to.deep.equal({
      code: 1,
      stdout: "",
      stderr: "vigilctl: the session bus closed the connection before vigild answered\n",
    });
    release();
  });
});

describe("vigilctl on a bus whose policy denies the mutating methods", function () {
  let bus: PrivateBus;
  let service: DbusService;
  let control: FakeControl;

  before(async function () {
    // As the shipped system policy does for non-root callers: reading is allowed, restart and reload are not.
    bus = await PrivateBus.start(`<policy context="default">
    <deny send_destination="org.vigil.Supervisor1" send_interface="org.vigil.Supervisor1" send_member="RestartProgram"/>
    <deny send_destination="org.vigil.Supervisor1" send_interface="org.vigil.Supervisor1" send_member="Reload"/>
  </policy>`);
    control = new FakeControl();
    service = await startDbusService(control, { bus: "session", address: bus.address, log: silent });
  });

  after(async function () {
    killLeftovers();
    await service?.close();
    await bus?.stop();
  });

  it("exits 4 with a pointer to the policy file on the system bus", async function () {
    const env = { DBUS_SYSTEM_BUS_ADDRESS: bus.address };
    const restart = await vigilctl(["restart", "web"], env);
    expect(restart).to.deep.equal({
      code: 4,
      stdout: "",
      stderr: "vigilctl: permission denied: restart needs root (see /etc/dbus-1/system.d/org.vigil.Supervisor1.conf)\n",
    });
    const reload = await vigilctl(["reload"], env);
    expect(reload.code).to.equal(4);
    expect(reload.stderr).to.equal(
      "vigilctl: permission denied: reload needs root (see /etc/dbus-1/system.d/org.vigil.Supervisor1.conf)\n",
    );
    expect(control.restarted).to.deep.equal([]);
    const status = await vigilctl(["status"], env);
    expect(status.code).to.equal(0);
  });

  it("exits 4 with the bus's reason on a session bus", async function () {
    const run = await vigilctl(["--bus", "session", "restart", "web"], { DBUS_SESSION_BUS_ADDRESS: bus.address });
    expect(run.code).to.equal(4);
    expect(run.stderr).to.match(/^vigilctl: permission denied: the session bus refused restart: .+\n$/);
  });
});
