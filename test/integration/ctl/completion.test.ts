// vigilctl's bash completion (completions/vigilctl.bash) as bash runs it:
// a real bash sources the script, COMP_WORDS/COMP_CWORD are set as readline
// would set them, the completion function runs, and COMPREPLY is printed.
// Program names and worker indices come from a real vigild on a private
// D-Bus, through the built vigilctl (on PATH as `vigilctl`).
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { PrivateBus } from "../../helpers/private-bus.js";
import { REPO } from "../../helpers/repo.js";
import { Vigild, stopAll } from "../../helpers/vigild.js";

const SCRIPT = join(REPO, "completions/vigilctl.bash");
const VIGILCTL = join(REPO, "dist/daemon/ctl/main.js");

describe("vigilctl bash completion", function () {
  this.timeout(30_000);
  let bus: PrivateBus;
  let binDir: string;
  let env: Record<string, string>;

  before(async function () {
    bus = await PrivateBus.start();
    // `vigilctl` on PATH, as make install links it.
    binDir = mkdtempSync(join(tmpdir(), "vigil-completion-"));
    writeFileSync(join(binDir, "vigilctl"), `#!/bin/sh\nexec "${process.execPath}" "${VIGILCTL}" "$@"\n`);
    chmodSync(join(binDir, "vigilctl"), 0o755);
    env = { PATH: `${binDir}:${process.env.PATH ?? "/usr/bin:/bin"}`, DBUS_SESSION_BUS_ADDRESS: bus.address };
    const v = new Vigild(
      {
        dbus: { bus: "session" },
        programs: {
          web: { command: ["/bin/sleep", "infinity"], instances: 3, protocol: "off" },
          "web.api": { command: ["/bin/sleep", "infinity"], instances: 1, protocol: "off" },
          ticker: { command: ["/bin/sleep", "infinity"], instances: 2, protocol: "off" },
        },
      },
      { env: { DBUS_SESSION_BUS_ADDRESS: bus.address } },
    );
    await v.waitFor((e) => e.msg.startsWith("D-Bus: serving"), 15_000, "vigild on the bus");
  });

  after(async function () {
    await stopAll();
    await bus?.stop();
    if (binDir) rmSync(binDir, { recursive: true, force: true });
  });

  /** What bash offers for `line` with the cursor at its end (a trailing space starts a new word). */
  function complete(line: string, extraEnv: Record<string, string> = {}): string[] {
    const words = line.split(" ");
    const program = [
      `source "$1"`,
      `COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")})`,
      `COMP_CWORD=${words.length - 1}`,
      `COMP_LINE='${line}'`,
      `COMP_POINT=${line.length}`,
      `_vigilctl`,
      `printf '%s\\n' "\${COMPREPLY[@]}"`,
    ].join("\n");
    const r = spawnSync("bash", ["--norc", "--noprofile", "-c", program, "bash", SCRIPT], {
      env: { ...env, ...extraEnv },
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.equal("");
    return r.stdout.split("\n").filter((w) => w !== "").sort();
  }

  it("registers itself for vigilctl", function () {
    const r = spawnSync("bash", ["--norc", "-c", 'source "$1" && complete -p vigilctl', "bash", SCRIPT], { encoding: "utf8" });
    expect(r.stdout.trim()).to.equal("complete -F _vigilctl vigilctl");
  });

  it("completes the commands, and not the hidden ones", function () {
    expect(complete("vigilctl ")).to.deep.equal(["help", "last-shutdown", "logs", "reload", "restart", "status"]);
    expect(complete("vigilctl re")).to.deep.equal(["reload", "restart"]);
    expect(complete("vigilctl --bus session l")).to.deep.equal(["last-shutdown", "logs"]);
    expect(complete("vigilctl help ")).to.include("logs");
  });

  it("completes each command's options and the values of --bus, --color and -p", function () {
    expect(complete("vigilctl status --")).to.deep.equal(["--bus", "--color", "--help", "--json", "--version"]);
    expect(complete("vigilctl logs web -")).to.include.members(["-f", "--follow", "-p", "--priority", "-n", "--lines", "--help"]);
    expect(complete("vigilctl logs web -")).to.not.include("--json");
    expect(complete("vigilctl reload --")).to.not.include("--json");
    expect(complete("vigilctl --bus ")).to.deep.equal(["session", "system"]);
    expect(complete("vigilctl --color a")).to.deep.equal(["always", "auto"]);
    expect(complete("vigilctl logs web -p w")).to.deep.equal(["warning"]);
  });

  it("completes program names from the running vigild, on the bus the line names", function () {
    expect(complete("vigilctl --bus session restart ")).to.deep.equal(["ticker", "web", "web.api"]);
    expect(complete("vigilctl --bus session logs w")).to.deep.equal(["web", "web.api"]);
    expect(complete("vigilctl restart t", { VIGIL_BUS: "session" })).to.deep.equal(["ticker"]);
    // Only one PROGRAM for restart.
    expect(complete("vigilctl --bus session restart web ")).to.deep.equal([]);
  });

  it("completes a program's worker indices for logs", function () {
    expect(complete("vigilctl --bus session logs web ")).to.deep.equal(["0", "1", "2"]);
    expect(complete("vigilctl --bus session logs -f ticker ")).to.deep.equal(["0", "1"]);
    expect(complete("vigilctl --bus session logs nope ")).to.deep.equal([]);
  });

  it("completes nothing, quietly, when vigild is not there", function () {
    expect(complete("vigilctl restart ", { DBUS_SYSTEM_BUS_ADDRESS: "unix:path=/nonexistent/bus" })).to.deep.equal([]);
  });
});
