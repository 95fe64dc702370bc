// The man pages' sources (man/*.md) against the programs they describe: every
// command and option that `vigilctl --help` and `vigild --help` list is in
// vigilctl(1) and vigild(8), so a new one cannot ship undocumented.
// (vigil.yaml(5) is docs/configuration.md itself: reference.test.ts.)
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { USAGE as VIGILD_USAGE } from "../../../daemon/cli.js";
import { USAGE as VIGILCTL_USAGE } from "../../../daemon/ctl/args.js";
import { REPO } from "../../helpers/repo.js";

const page = (name: string): string => readFileSync(join(REPO, "man", `${name}.md`), "utf8");

/** Long options (--config, --json) in a text. */
const longOptions = (text: string): string[] => [...new Set([...text.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((m) => m[0]))];

/** The commands a usage text lists under "commands:", two spaces in. */
function commands(usage: string): string[] {
  const section = /^commands:\n((?: {2}\S.*\n|\s{3,}.*\n)+)/m.exec(`${usage}\n`)?.[1] ?? "";
  return [...section.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!);
}

describe("man pages: every command and option of the programs", () => {
  it("vigilctl(1) describes every command of vigilctl --help", () => {
    const listed = commands(VIGILCTL_USAGE);
    expect(listed).to.include.members(["status", "restart", "reload", "last-shutdown"]);
    const man = page("vigilctl.1");
    expect(listed.filter((c) => !man.includes(`**${c}**`))).to.deep.equal([]);
  });

  it("vigilctl(1) and vigild(8) describe every option their --help names", () => {
    const ctl = page("vigilctl.1");
    expect(longOptions(VIGILCTL_USAGE).filter((o) => !ctl.includes(`**${o}**`))).to.deep.equal([]);
    const vigild = page("vigild.8");
    expect(longOptions(VIGILD_USAGE)).to.include.members(["--config", "--check-config", "--version"]);
    expect(longOptions(VIGILD_USAGE).filter((o) => !vigild.includes(`**${o}**`))).to.deep.equal([]);
  });
});
