// vigilctl's command line (parseCtlArgs), its help texts, and the journalctl
// matches of `vigilctl logs`: pure functions, table-tested.
import { expect } from "chai";
import { COMMANDS, USAGE, commandHelp, isPriority, parseCtlArgs, type CtlArgs, type CtlCommand, type LogsCommand } from "../../../daemon/ctl/args.js";
import { journalctlArgs, journalctlEnv, programIdentifiers } from "../../../daemon/ctl/logs.js";

const ok = (command: CtlCommand, bus: "system" | "session" = "system", color: "auto" | "always" | "never" = "auto"): CtlArgs => ({
  ok: true,
  command,
  bus,
  color,
});
const logs = (program: string, more: Partial<LogsCommand> = {}): CtlCommand => ({
  kind: "logs",
  program,
  worker: null,
  follow: false,
  priority: null,
  lines: null,
  ...more,
});

describe("ctl args", function () {
  const cases: Array<[string[], Record<string, string>, CtlArgs]> = [
    [["status"], {}, ok({ kind: "status", json: false })],
    [["status", "--json"], {}, ok({ kind: "status", json: true })],
    [["--json", "last-shutdown"], {}, ok({ kind: "last-shutdown", json: true })],
    [["--bus", "session", "reload"], {}, ok({ kind: "reload" }, "session")],
    [["reload", "--bus=session"], {}, ok({ kind: "reload" }, "session")],
    [["restart", "web"], { VIGIL_BUS: "session" }, ok({ kind: "restart", program: "web" }, "session")],
    [["--bus", "system", "status"], { VIGIL_BUS: "session" }, ok({ kind: "status", json: false })],
    [["restart", "--", "-odd"], {}, ok({ kind: "restart", program: "-odd" })],
    [["-V"], {}, ok({ kind: "version" })],
    [["status", "--color", "never"], {}, ok({ kind: "status", json: false }, "system", "never")],
    [["--color=always", "status"], {}, ok({ kind: "status", json: false }, "system", "always")],
    // help: general, per command, both spellings
    [["--help"], {}, ok({ kind: "help", topic: null })],
    [["help"], {}, ok({ kind: "help", topic: null })],
    [["status", "--help"], {}, ok({ kind: "help", topic: "status" })],
    [["-h", "logs"], {}, ok({ kind: "help", topic: "logs" })],
    [["help", "restart"], {}, ok({ kind: "help", topic: "restart" })],
    [["restart", "--help"], {}, ok({ kind: "help", topic: "restart" })], // no PROGRAM needed for help
    // logs
    [["logs", "web"], {}, ok(logs("web"))],
    [["logs", "web", "1"], {}, ok(logs("web", { worker: 1 }))],
    [["logs", "web", "-f", "-p", "warning"], {}, ok(logs("web", { follow: true, priority: "warning" }))],
    [["logs", "--follow", "--priority=err..warning", "web", "0"], {}, ok(logs("web", { worker: 0, follow: true, priority: "err..warning" }))],
    [["logs", "web", "-p3", "-n", "20"], {}, ok(logs("web", { priority: "3", lines: 20 }))],
    [["logs", "web", "--lines=0"], {}, ok(logs("web", { lines: 0 }))],
    // completion's hidden commands
    [["programs"], {}, ok({ kind: "programs" })],
    [["--bus", "session", "workers", "web"], {}, ok({ kind: "workers", program: "web" }, "session")],
    // errors
    [[], {}, { ok: false, error: "missing command" }],
    [["frob"], {}, { ok: false, error: "unknown command: frob" }],
    [["help", "frob"], {}, { ok: false, error: "help: unknown command: frob" }],
    [["restart"], {}, { ok: false, error: "restart needs a PROGRAM" }],
    [["workers"], {}, { ok: false, error: "workers needs a PROGRAM" }],
    [["restart", "a", "b"], {}, { ok: false, error: "restart: unexpected argument: b" }],
    [["status", "x"], {}, { ok: false, error: "status: unexpected argument: x" }],
    [["reload", "--json"], {}, { ok: false, error: "reload has no --json" }],
    [["status", "-f"], {}, { ok: false, error: "status has no -f" }],
    [["logs", "web", "--json"], {}, { ok: false, error: "logs has no --json" }],
    [["logs"], {}, { ok: false, error: "logs needs a PROGRAM" }],
    [["logs", "web", "one"], {}, { ok: false, error: 'logs: WORKER must be a worker index (0, 1, ...), not "one"' }],
    [["logs", "web", "0", "1"], {}, { ok: false, error: "logs: unexpected argument: 1" }],
    [["logs", "web", "-p", "loud"], {}, { ok: false, error: '-p must be emerg, alert, crit, err, warning, notice, info, debug, 0-7 or FROM..TO, not "loud"' }],
    [["logs", "web", "-p"], {}, { ok: false, error: "-p needs a value" }],
    [["logs", "web", "-n", "ten"], {}, { ok: false, error: '-n must be a number of lines, not "ten"' }],
    [["--color", "sometimes", "status"], {}, { ok: false, error: '--color must be auto, always or never, not "sometimes"' }],
    [["--bus"], {}, { ok: false, error: '--bus must be "system" or "session", not empty' }],
    [["--bus", "user", "status"], {}, { ok: false, error: '--bus must be "system" or "session", not "user"' }],
    [["status"], { VIGIL_BUS: "both" }, { ok: false, error: 'VIGIL_BUS must be "system" or "session", not "both"' }],
    [["status", "-q"], {}, { ok: false, error: "unknown option: -q" }],
    [["logs", "web", "-fp", "err"], {}, { ok: false, error: "unknown option: -fp" }],
  ];
  for (const [argv, env, expected] of cases) {
    it(`${JSON.stringify(argv)} ${JSON.stringify(env)}`, function () {
      expect(parseCtlArgs(argv, env)).to.deep.equal(expected);
    });
  }

  it("journalctl's priorities: names, 0-7 and ranges", function () {
    for (const p of ["emerg", "err", "warning", "debug", "0", "7", "err..warning", "0..4"]) expect(isPriority(p), p).to.equal(true);
    for (const p of ["", "8", "error", "warn", "WARNING", "err..", "..err", "1..2..3"]) expect(isPriority(p), p).to.equal(false);
  });
});

describe("ctl help", function () {
  it("the usage lists every command but the hidden ones", function () {
    for (const [name, spec] of Object.entries(COMMANDS)) {
      const listed = USAGE.split("\n").some((line) => line === `  ${spec.synopsis}` || line.startsWith(`  ${spec.synopsis} `));
      expect(listed, name).to.equal(!("hidden" in spec && spec.hidden));
    }
  });

  it("every command has its own --help with its synopsis and options", function () {
    for (const name of Object.keys(COMMANDS) as Array<keyof typeof COMMANDS>) {
      const help = commandHelp(name);
      expect(help, name).to.match(new RegExp(`^usage: vigilctl \\[--bus system\\|session\\] ${COMMANDS[name].synopsis.replace(/[[\]|.]/g, "\\$&")}\n`));
      expect(help, name).to.include(COMMANDS[name].summary);
      expect(help, name).to.include("exit status: 0 ok");
    }
    const logsHelp = commandHelp("logs");
    for (const option of ["-f, --follow", "-p, --priority PRIORITY", "-n, --lines LINES"]) expect(logsHelp).to.include(`  ${option}`);
    expect(commandHelp("status")).to.include("  --json");
  });
});

describe("ctl logs: journalctl's matches", function () {
  it("a program: every PROGRAM/INDEX the journal knows plus the running indices, in order, once", function () {
    const known = ["web/1", "web/0", "web/10", "webx/0", "web", "web/", "web/a", "other/3", "systemd", "web/0/x"];
    expect(programIdentifiers("web", known, [2, 0])).to.deep.equal(["web/0", "web/1", "web/2", "web/10"]);
    expect(programIdentifiers("web", [], [])).to.deep.equal([]);
    expect(programIdentifiers("a.b", ["a.b/0", "axb/1"], [])).to.deep.equal(["a.b/0"]);
  });

  it("journalctl's arguments: options, then one SYSLOG_IDENTIFIER= match per worker (ORed by journalctl)", function () {
    expect(journalctlArgs(logs("web") as LogsCommand, ["web/0", "web/1"])).to.deep.equal([
      "SYSLOG_IDENTIFIER=web/0",
      "SYSLOG_IDENTIFIER=web/1",
    ]);
    expect(journalctlArgs(logs("web", { worker: 1, follow: true, priority: "warning", lines: 5 }) as LogsCommand, ["web/1"])).to.deep.equal([
      "--follow",
      "--priority=warning",
      "--lines=5",
      "SYSLOG_IDENTIFIER=web/1",
    ]);
  });

  it("journalctl's colour follows --color when it is not auto", function () {
    expect(journalctlEnv({ A: "1" }, null)).to.deep.equal({ A: "1" });
    expect(journalctlEnv({ A: "1" }, false)).to.deep.equal({ A: "1", SYSTEMD_COLORS: "0" });
    expect(journalctlEnv({}, true)).to.deep.equal({ SYSTEMD_COLORS: "1" });
  });
});
