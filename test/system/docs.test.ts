// What `make install` gives an operator besides the programs, checked as an
// operator would in a real systemd container: `man vigild`, `man vigilctl`
// and `man vigil.yaml` work, the unit's Documentation= names them, and the
// JSON Schema named by the default configuration's first line is there; and
// `make uninstall` takes them away again.
//
// Its own container (booted once for this file); skipped, with the reason
// printed, where systemd-nspawn cannot run; under CI that is a failure.
import { expect } from "chai";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, SRC, containerForSuite } from "./container.js";

const MAN_DIR = "/usr/local/share/man";
const SCHEMA = "/etc/vigil/vigil.schema.json";
const CONFIG = "/etc/vigil/vigil.yaml";
const MANPATH_CONFIG = "/etc/manpath.config";

describe("docs installed by make install, under a real systemd (system tests)", function () {
  this.timeout(120_000);
  const ct = containerForSuite();

  before(() => {
    // The container runs the host's man-db; boot.sh gives its volatile /etc the host's configuration.
    if (!existsSync(MANPATH_CONFIG)) throw new Error(`${MANPATH_CONFIG} is missing on this host: apt-get install man-db (scripts/deps.sh test)`);
  });

  /** `man ARGS` as a user types it, its pager replaced by cat, from a neutral directory. */
  async function man(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    const r = await ct().exec(["env", "MANPAGER=cat", "MANWIDTH=100", "LANG=C.UTF-8", "sh", "-c", 'cd / && exec man "$@"', "sh", ...args]);
    return { code: r.code, out: r.stdout, err: r.stderr };
  }

  it("man vigild, man vigilctl and man vigil.yaml find the installed pages", async () => {
    const where = await man("-w", "vigild");
    expect(where.code, where.err).to.equal(0);
    // Debian links /usr/local/man to share/man, and man may name the page through either.
    expect((await ct().run(["readlink", "-f", where.out.trim()])).trim()).to.equal(`${MAN_DIR}/man8/vigild.8`);

    const vigild = await man("vigild");
    expect(vigild.code, vigild.err).to.equal(0);
    expect(vigild.out).to.match(/^VIGILD\(8\)/);
    expect(vigild.out).to.match(/vigild - the vigil process supervisor/);
    expect(vigild.out).to.contain("--check-config");

    const ctl = await man("vigilctl");
    expect(ctl.code, ctl.err).to.equal(0);
    expect(ctl.out).to.match(/^VIGILCTL\(1\)/);
    expect(ctl.out).to.contain("last-shutdown");

    const conf = await man("5", "vigil.yaml");
    expect(conf.code, conf.err).to.equal(0);
    expect(conf.out).to.match(/^VIGIL\.YAML\(5\)/);
    // The reference itself: the last key of the file and its default.
    expect(conf.out).to.contain("programs.NAME.shutdown.timeout");
    expect(conf.out).to.match(/Default: 5s/);
    // As the README and vigild(8) name it: without the section.
    const bare = await man("vigil.yaml");
    expect(bare.code, bare.err).to.equal(0);
    expect(bare.out).to.match(/^VIGIL\.YAML\(5\)/);
  });

  it("the unit's Documentation= names the man pages", async () => {
    const doc = (await ct().show("vigil.service", ["Documentation"])).Documentation ?? "";
    // systemctl show quotes each entry.
    expect(doc.split(/\s+/).map((d) => d.replace(/^"(.*)"$/, "$1"))).to.include.members(["man:vigild(8)", "man:vigil.yaml(5)"]);
  });

  it("installs the JSON Schema that the default configuration's first line names", async () => {
    const firstLine = (await ct().run(["head", "-n", "1", CONFIG])).trim();
    expect(firstLine).to.equal(`# yaml-language-server: $schema=${SCHEMA}`);
    const installed = await ct().run(["cat", SCHEMA]);
    expect(JSON.parse(installed)).to.deep.equal(JSON.parse(readFileSync(join(REPO, "dist/vigil.schema.json"), "utf8")));
    expect(await ct().run(["stat", "-c", "%a %U", SCHEMA])).to.equal("644 root\n");
  });

  it("make uninstall removes the man pages and the schema, and keeps vigil.yaml", async () => {
    const r = await ct().exec(["bash", `${SRC}/scripts/install.sh`, "uninstall"], { timeoutMs: 120_000 });
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    const left = await ct().sh(`ls ${MAN_DIR}/man1/vigilctl.1 ${MAN_DIR}/man5/vigil.yaml.5 ${MAN_DIR}/man8/vigild.8 ${SCHEMA} 2>/dev/null; true`);
    expect(left.stdout.trim()).to.equal("");
    expect((await man("vigild")).code).to.not.equal(0);
    expect((await ct().exec(["test", "-f", CONFIG])).code, `${CONFIG} is kept`).to.equal(0);
  });
});
