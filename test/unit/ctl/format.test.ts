// vigilctl's pure parts: durations, tables, status and last-shutdown text,
// the command line, error classification, and the D-Bus wire conversions.
import { expect } from "chai";
import dbus from "dbus-next";
import { CTL_EXIT } from "../../../daemon/ctl/args.js";
import { classifyError } from "../../../daemon/ctl/client.js";
import {
  COLOR,
  PLAIN,
  formatDuration,
  formatLastShutdown,
  stripColor,
  useColor,
  formatPreciseDuration,
  formatStatus,
  formatTable,
  oneLine,
  shutdownRow,
  workerRow,
} from "../../../daemon/ctl/format.js";
import { eventToSignal, rowToWorker, workerToRow } from "../../../daemon/dbus/contract.js";
import { BusConnectError, resolveBusAddress } from "../../../daemon/dbus/connect.js";
import { sampleReport, sampleStatus } from "../../helpers/fake-control.js";

describe("ctl format", function () {
  describe("formatDuration", function () {
    const cases: Array<[number | null, string]> = [
      [null, "-"],
      [-1, "-"],
      [Number.NaN, "-"],
      [0, "0ms"],
      [120.4, "120ms"],
      [999, "999ms"],
      [1000, "1s"],
      [2450, "2.4s"],
      [9999, "9.9s"],
      [10_000, "10s"],
      [42_999, "42s"],
      [60_000, "1m0s"],
      [192_400, "3m12s"],
      [3_599_999, "59m59s"],
      [3_600_000, "1h00m"],
      [7_500_000, "2h05m"],
      [86_400_000, "1d0h"],
      [3 * 86_400_000 + 4 * 3_600_000 + 59_000, "3d4h"],
    ];
    for (const [ms, text] of cases) {
      it(`${ms} -> ${text}`, function () {
        expect(formatDuration(ms)).to.equal(text);
      });
    }
  });

  describe("formatPreciseDuration", function () {
    const cases: Array<[number | null, string]> = [
      [null, "-"],
      [35, "35ms"],
      [1000, "1s"],
      [4955, "4.955s"],
      [5010, "5.01s"],
      [5250.4, "5.25s"],
      [20_000, "20s"],
      [59_999, "59.999s"],
      [61_000, "1m1s"],
    ];
    for (const [ms, text] of cases) {
      it(`${ms} -> ${text}`, function () {
        expect(formatPreciseDuration(ms)).to.equal(text);
      });
    }
  });

  it("oneLine keeps a status from breaking the table", function () {
    expect(oneLine(null)).to.equal("-");
    expect(oneLine("   ")).to.equal("-");
    expect(oneLine("a\nb\t\tc\r\n")).to.equal("a b c");
  });

  it("formatTable aligns left, two spaces apart, without trailing blanks", function () {
    expect(formatTable(["A", "BB", "C"], [["xxx", "y", "z"], ["", "", ""]])).to.equal("A    BB  C\nxxx  y   z\n");
  });

  it("workerRow: humane durations, - for none", function () {
    const [web0, , batch0] = sampleStatus().workers;
    expect(workerRow(web0!)).to.deep.equal(["web", "0", "running", "1001", "3m12s", "0", "120ms", "serving 12 req/s"]);
    expect(workerRow(batch0!)).to.deep.equal(["batch", "0", "failed", "-", "-", "11", "-", "-"]);
  });

  it("formatStatus: header, programs (FAILED, teardown mode) and workers", function () {
    expect(formatStatus(sampleStatus())).to.equal(
      [
        "vigild 0.1.0, pid 4242, /etc/vigil/vigil.yaml: running",
        "status: running: 3/3 workers ready",
        "",
        "PROGRAM  STATE    READY  TEARDOWN     RESTARTS",
        "web      running  2/2    skip (auto)  hang=1",
        "batch    FAILED   0/1    destroy      crash=11",
        "plain    running  1/1    destroy      -",
        "",
        "PROGRAM  WORKER  STATE    PID   UPTIME  RESTARTS  HEARTBEAT  STATUS",
        "web      0       running  1001  3m12s   0         120ms      serving 12 req/s",
        "web      1       running  1002  5s      1         80ms       -",
        "batch    0       failed   -     -       11        -          -",
        "plain    0       running  1003  2h00m   0         -          -",
        "",
      ].join("\n"),
    );
  });

  it("formatStatus with nothing configured", function () {
    const s = { ...sampleStatus(), programs: [], workers: [], statusText: "" };
    expect(formatStatus(s)).to.equal(
      "vigild 0.1.0, pid 4242, /etc/vigil/vigil.yaml: running\nstatus: -\n\nno programs\n\nno workers\n",
    );
  });

  it("shutdownRow: outcome, hang, phases, exit", function () {
    const [forced, skipped, plain] = sampleReport().workers;
    expect(shutdownRow(forced!)).to.deep.equal(["web/0", "forced", "teardown", "40ms", "4.955s", "5.01s", "SIGKILL"]);
    expect(shutdownRow(skipped!)).to.deep.equal(["web/1", "skipped", "-", "30ms", "skipped", "35ms", "0"]);
    expect(shutdownRow(plain!)).to.deep.equal(["plain/0", "clean", "-", "-", "-", "12ms", "0"]);
  });

  it("formatLastShutdown: none, and a full report", function () {
    expect(formatLastShutdown(null)).to.equal("no previous shutdown recorded\n");
    expect(formatLastShutdown({ ...sampleReport(), forced_by_signal: true, teardown_switched: [] })).to.equal(
      [
        "stopped 3 workers in 5.3s: 1 clean, 1 skipped, 1 forced (1 teardown hang)",
        "started 2025-01-02T03:04:05.000Z, ended 2025-01-02T03:04:10.250Z (5.25s, forced by a second signal)",
        "vigild pid 4100",
        "",
        "PROGRAM/WORKER  OUTCOME  HANG      HANDLERS  TEARDOWN  TOTAL  EXIT",
        "web/0           forced   teardown  40ms      4.955s    5.01s  SIGKILL",
        "web/1           skipped  -         30ms      skipped   35ms   0",
        "plain/0         clean    -         -         -         12ms   0",
        "",
      ].join("\n"),
    );
    expect(formatLastShutdown({ ...sampleReport(), workers: [] })).to.include(
      "teardown switched to skip (auto): web\n\nno workers were running\n",
    );
  });
});

describe("ctl colour", function () {
  const ESC = "\x1b[";

  it("useColor: a terminal only, unless --color says; NO_COLOR and TERM=dumb turn auto off", function () {
    const cases: Array<[Parameters<typeof useColor>, boolean]> = [
      [["auto", true, { TERM: "xterm-256color" }], true],
      [["auto", true, {}], true],
      [["auto", false, { TERM: "xterm" }], false],
      [["auto", true, { NO_COLOR: "1", TERM: "xterm" }], false],
      [["auto", true, { NO_COLOR: "", TERM: "xterm" }], true], // no-color.org: set and not empty
      [["auto", true, { TERM: "dumb" }], false],
      [["always", false, { NO_COLOR: "1" }], true],
      [["never", true, { TERM: "xterm" }], false],
    ];
    for (const [args, expected] of cases) expect(useColor(...args), JSON.stringify(args)).to.equal(expected);
  });

  it("formatStatus in colour: states painted, columns still aligned, the same text without the codes", function () {
    const plain = formatStatus(sampleStatus(), PLAIN);
    const coloured = formatStatus(sampleStatus(), COLOR);
    expect(coloured).to.not.equal(plain);
    expect(stripColor(coloured)).to.equal(plain);
    const lines = coloured.split("\n");
    expect(lines[0]).to.equal(`vigild 0.1.0, pid 4242, /etc/vigil/vigil.yaml: ${ESC}32mrunning${ESC}0m`);
    expect(lines).to.include(`${ESC}1mPROGRAM${ESC}0m  ${ESC}1mSTATE${ESC}0m    ${ESC}1mREADY${ESC}0m  ${ESC}1mTEARDOWN${ESC}0m     ${ESC}1mRESTARTS${ESC}0m`);
    expect(lines).to.include(`batch    ${ESC}1;31mFAILED${ESC}0m   0/1    destroy      crash=11`);
    expect(lines).to.include(`web      0       ${ESC}32mrunning${ESC}0m  1001  3m12s   0         120ms      serving 12 req/s`);
    expect(lines).to.include(`batch    0       ${ESC}1;31mfailed${ESC}0m   -     -       11        -          -`);
    // Only the state columns are painted: a program named "running" is not.
    const odd = { ...sampleStatus(), programs: [{ ...sampleStatus().programs[0]!, name: "running" }] };
    expect(formatStatus(odd, COLOR).split("\n")).to.satisfy((l: string[]) => l.some((x) => x.startsWith(`running  ${ESC}32mrunning`)));
  });

  it("formatLastShutdown in colour: outcomes by severity, a hang in red", function () {
    const coloured = formatLastShutdown(sampleReport(), COLOR);
    expect(stripColor(coloured)).to.equal(formatLastShutdown(sampleReport(), PLAIN));
    const lines = coloured.split("\n");
    expect(lines).to.include(`web/0           ${ESC}1;31mforced${ESC}0m   ${ESC}1;31mteardown${ESC}0m  40ms      4.955s    5.01s  SIGKILL`);
    expect(lines).to.include(`web/1           ${ESC}33mskipped${ESC}0m  -         30ms      skipped   35ms   0`);
    expect(lines).to.include(`plain/0         ${ESC}32mclean${ESC}0m    -         -         -         12ms   0`);
  });

  it("formatTable in colour keeps no trailing blanks when the last cells are empty", function () {
    const text = formatTable(["A", "B"], [["x", ""]], COLOR, (_, t) => COLOR.good(t));
    expect(text).to.equal(`${ESC}1mA${ESC}0m  ${ESC}1mB${ESC}0m\n${ESC}32mx${ESC}0m`);
  });
});

describe("ctl error classification", function () {
  const e = (type: string, text: string): dbus.DBusError => new dbus.DBusError(type, text);
  const cases: Array<[string, unknown, "system" | "session", number, string]> = [
    [
      "ServiceUnknown",
      e("org.freedesktop.DBus.Error.ServiceUnknown", "The name is not activatable"),
      "system",
      CTL_EXIT.notRunning,
      "vigild is not running (no owner for org.vigil.Supervisor1 on the system bus)",
    ],
    [
      "NameHasNoOwner",
      e("org.freedesktop.DBus.Error.NameHasNoOwner", "x"),
      "session",
      CTL_EXIT.notRunning,
      "vigild is not running (no owner for org.vigil.Supervisor1 on the session bus)",
    ],
    [
      "unreachable bus",
      new BusConnectError("system", "unix:path=/x", "no such socket (ENOENT)"),
      "system",
      CTL_EXIT.notRunning,
      "vigild is not running (cannot connect to the system bus at unix:path=/x: no such socket (ENOENT))",
    ],
    [
      "AccessDenied on the system bus",
      e("org.freedesktop.DBus.Error.AccessDenied", "Rejected send message"),
      "system",
      CTL_EXIT.accessDenied,
      "permission denied: restart needs root (see /etc/dbus-1/system.d/org.vigil.Supervisor1.conf)",
    ],
    [
      "UnknownProgram",
      e("org.vigil.Supervisor1.Error.UnknownProgram", 'no program named "x"'),
      "system",
      CTL_EXIT.error,
      'no program named "x"',
    ],
    [
      "Failed",
      e("org.vigil.Supervisor1.Error.Failed", "boom"),
      "system",
      CTL_EXIT.error,
      "restart failed: boom",
    ],
    [
      "NoReply",
      e("org.freedesktop.DBus.Error.NoReply", "Message recipient disconnected from message bus without replying"),
      "system",
      CTL_EXIT.error,
      "no reply from vigild to restart (Message recipient disconnected from message bus without replying); it may still be at work, see vigilctl status",
    ],
    [
      "UnknownMethod",
      e("org.freedesktop.DBus.Error.UnknownMethod", "no such method"),
      "system",
      CTL_EXIT.error,
      "vigild does not offer restart (no such method): is it a different version?",
    ],
    ["a plain error", new Error("odd"), "system", CTL_EXIT.error, "restart failed: odd"],
  ];
  for (const [name, err, bus, code, message] of cases) {
    it(name, function () {
      const failure = classifyError(err, bus, "restart");
      expect([failure.exitCode, failure.message]).to.deep.equal([code, message]);
    });
  }
});

describe("dbus wire conversions", function () {
  it("a worker row round-trips (64-bit values come back as bigint)", function () {
    for (const w of sampleStatus().workers) {
      const row = workerToRow(w);
      const wire = row.map((v, i) => (i === 4 || i === 6 ? BigInt(v) : v));
      const back = rowToWorker(wire);
      expect(back).to.deep.equal({
        ...w,
        uptimeMs: w.uptimeMs === null ? null : Math.round(w.uptimeMs),
        lastHeartbeatAgeMs: w.lastHeartbeatAgeMs === null ? null : Math.round(w.lastHeartbeatAgeMs),
      });
    }
  });

  it("events become signal arguments with the documented 'none' values", function () {
    expect(
      eventToSignal({ type: "worker-hung", program: "p", worker: 2, pid: null, phase: "signal", afterMs: -3 }),
    ).to.deep.equal({ name: "WorkerHung", args: ["p", 2, 0, "signal", 0] });
    expect(
      eventToSignal({ type: "worker-exited", program: "p", worker: 0, pid: 7, code: 0, signal: null, outcome: "clean" }),
    ).to.deep.equal({ name: "WorkerExited", args: ["p", 0, 7, 0, "", "clean"] });
  });

  it("resolveBusAddress: explicit, then the environment, then the system default", function () {
    expect(resolveBusAddress("session", "unix:path=/a", { DBUS_SESSION_BUS_ADDRESS: "unix:path=/b" })).to.deep.equal({
      ok: true,
      address: "unix:path=/a",
    });
    expect(resolveBusAddress("system", undefined, { DBUS_SYSTEM_BUS_ADDRESS: "unix:path=/s" })).to.deep.equal({
      ok: true,
      address: "unix:path=/s",
    });
    expect(resolveBusAddress("system", undefined, {})).to.deep.equal({
      ok: true,
      address: "unix:path=/var/run/dbus/system_bus_socket",
    });
    expect(resolveBusAddress("session", undefined, {})).to.deep.equal({
      ok: false,
      error: "DBUS_SESSION_BUS_ADDRESS is not set",
    });
  });
});
