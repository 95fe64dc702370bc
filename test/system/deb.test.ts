// The Debian package, as an operator meets it: `make deb`'s build script
// makes two packages on this host (the second a rebuild with a changed
// version), and a clean container (this host's /usr, /etc and /var through
// throwaway layers, without make install) installs the first with
// `apt install ./vigil_*.deb`, starts vigil with the default configuration,
// upgrades to the second while vigil runs (with an edited conffile),
// removes it and purges it, checking after each step what an operator
// would check.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { expect } from "chai";
import { REPO, SRC, start, unavailableReason, type Container } from "./container.js";

const UNIT = "vigil.service";
const CONF = "/etc/vigil/vigil.yaml";
/** MESSAGE_ID of systemd's "Started UNIT" (sd-messages.h SD_MESSAGE_UNIT_STARTED). */
const UNIT_STARTED = "39f53479d3a045ac8e11786248231fbf";
const OUT_DIR = join(REPO, ".run", `deb-test-${process.pid}`);

/** packaging/deb/build.sh on this host; resolves with the .deb's file name. */
function buildDeb(version: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn("bash", [join(REPO, "packaging/deb/build.sh"), OUT_DIR], {
      env: { ...process.env, DEB_VERSION: version, DEB_COMPRESSION: "gzip" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    child.once("error", reject);
    child.once("close", (code) => {
      if (code !== 0) reject(new Error(`build.sh exited ${code}:\n${stderr}`));
      else resolvePromise(stdout.trim().split("/").pop()!);
    });
  });
}

/**
 * Why the package cannot be installed here: its Depends: names Debian's
 * nodejs package (>= 20, the major version the native addons were built
 * for), so node must come from a .deb (NodeSource, or Debian 13's own), not
 * from a tarball or nvm.
 */
function nodejsReason(): string | null {
  const r = spawnSync("dpkg-query", ["-W", "-f=${Version}", "nodejs"], { encoding: "utf8" });
  const major = process.versions.node.split(".")[0]!;
  if (r.status !== 0) return `node ${process.versions.node} is not from Debian's nodejs package, which the .deb depends on`;
  if (r.stdout.split(".")[0]!.replace(/^\d+:/, "") !== major) return `the nodejs package is ${r.stdout}, but node on PATH is ${process.versions.node}`;
  return null;
}

describe("the Debian package: install, start, upgrade, remove, purge (system tests)", function () {
  this.timeout(600_000);
  let c: Container | null = null;
  const ct = (): Container => {
    if (!c) throw new Error("no container");
    return c;
  };
  let upstream = "";
  let first = "";
  let second = "";

  before(async function () {
    this.timeout(480_000);
    const reason = unavailableReason() ?? nodejsReason();
    if (reason) {
      if (process.env.CI === "true") throw new Error(`the system tests must run under CI, but: ${reason}`);
      console.log(`    system tests skipped: ${reason}`);
      this.skip();
    }
    mkdirSync(OUT_DIR, { recursive: true });
    upstream = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;
    first = await buildDeb(`${upstream}-1`);
    second = await buildDeb(`${upstream}+rebuild-1`);
    c = await start({ root: "overlay" });
  });

  after(async function () {
    this.timeout(60_000);
    await c?.stop();
    rmSync(OUT_DIR, { recursive: true, force: true });
  });

  const dir = (): string => `${SRC}/.run/deb-test-${process.pid}`;
  const apt = (args: string): Promise<string> =>
    ct().run(["sh", "-c", `cd "${dir()}" && DEBIAN_FRONTEND=noninteractive apt ${args} 2>&1`], { timeoutMs: 180_000 });
  const dpkgStatus = async (): Promise<string> => (await ct().exec(["dpkg-query", "-W", "-f=${Status} ${Version}", "vigil"])).stdout;
  const exists = async (path: string): Promise<boolean> => (await ct().exec(["test", "-e", path])).code === 0;
  const status = async (): Promise<{ version: string; programs: Array<{ name: string; instances: number; ready: number }> }> =>
    JSON.parse(await ct().run(["vigilctl", "status", "--json"])) as { version: string; programs: Array<{ name: string; instances: number; ready: number }> };
  const show = (): Promise<Record<string, string>> =>
    ct().show(UNIT, ["ActiveState", "MainPID", "InvocationID", "NRestarts", "UnitFileState", "LoadState"]);

  it("the container is clean: no vigil from make install or a package", async function () {
    for (const path of ["/usr/local/bin/vigild", "/usr/local/lib/node_modules/vigil", "/etc/systemd/system/vigil.service", "/etc/vigil", "/usr/bin/vigild"]) {
      expect(await exists(path), path).to.equal(false);
    }
    expect((await ct().exec(["dpkg-query", "-W", "vigil"])).code).to.not.equal(0);
    // The Depends: line is installable here: nodejs >= 20 is.
    expect(await ct().run(["dpkg-query", "-W", "-f=${Version}", "nodejs"])).to.match(/^2\d\./);
  });

  it("apt install ./vigil_*.deb installs it, and neither enables nor starts vigil", async function () {
    const out = await apt(`install -y ./${first}`);
    expect(out).to.include("installed, not started");
    expect(await dpkgStatus()).to.equal(`install ok installed ${upstream}-1`);
    const s = await show();
    expect(s.LoadState).to.equal("loaded");
    expect(s.ActiveState).to.equal("inactive");
    expect(s.UnitFileState).to.equal("disabled");
    expect(await ct().run(["systemctl", "cat", UNIT])).to.include("ExecStart=/usr/bin/vigild --config /etc/vigil/vigil.yaml");
    expect(await ct().run(["vigilctl", "--version"])).to.equal(`vigilctl ${upstream}\n`);
    expect((await ct().exec(["vigild", "--check-config", "--config", CONF])).code).to.equal(0);
    expect(await exists("/usr/share/dbus-1/system.d/org.vigil.Supervisor1.conf")).to.equal(true);
    expect(await exists("/usr/share/bash-completion/completions/vigilctl")).to.equal(true);
    await ct().run(["python3", "-c", "import vigil"]);
    expect(await ct().run(["cat", "/var/lib/dpkg/info/vigil.conffiles"])).to.include(CONF);
  });

  it("systemctl start vigil runs the default configuration", async function () {
    await ct().run(["systemctl", "start", UNIT], { timeoutMs: 90_000 });
    const s = await show();
    expect(s.ActiveState).to.equal("active");
    const st = await status();
    expect(st.version).to.equal(upstream);
    expect(st.programs.find((p) => p.name === "idle")).to.include({ instances: 1, ready: 1 });
  });

  it("an upgrade while vigil runs keeps the edited conffile and restarts vigil once, into the new version", async function () {
    // The operator's edit: two idle workers. Not reloaded: the running vigild still has one.
    const edited = (await ct().run(["cat", CONF])).replace(/^(    instances:) 1$/m, "$1 2") + "# edited by the operator\n";
    expect(edited).to.match(/^    instances: 2$/m);
    await ct().writeFile(CONF, edited);
    const before = await show();
    const cursor = await ct().cursor();

    const out = await apt(`install -y ./${second}`);
    expect(out).to.include("restarting vigil.service");

    expect(await dpkgStatus()).to.equal(`install ok installed ${upstream}+rebuild-1`);
    expect(await ct().run(["cat", CONF])).to.equal(edited);
    // No .dpkg-new or .dpkg-dist beside it; the JSON Schema is the package's, linked, not a conffile.
    expect((await ct().run(["sh", "-c", "ls /etc/vigil"])).trim().split("\n")).to.deep.equal(["vigil.schema.json", "vigil.yaml"]);
    expect((await ct().run(["readlink", "/etc/vigil/vigil.schema.json"])).trim()).to.equal("/usr/share/vigil/vigil.schema.json");
    const after = await show();
    expect(after.ActiveState).to.equal("active");
    expect(after.MainPID).to.not.equal(before.MainPID);
    expect(after.InvocationID).to.not.equal(before.InvocationID);
    expect(after.NRestarts, "a restart by the package, not systemd's Restart= after a failure").to.equal(before.NRestarts);
    const entries = await ct().journalEntries(UNIT, { afterCursor: cursor });
    const starts = entries.filter((e) => e.MESSAGE_ID === UNIT_STARTED);
    expect(starts.map((e) => e.INVOCATION_ID), "systemd started vigil once, as the invocation now running").to.deep.equal([after.InvocationID]);
    expect(entries.filter((e) => /^stopped \d+ workers? in /.test(e.MESSAGE)), "the old vigild stopped its workers once").to.have.length(1);
    // The new vigild: the new version, and the edited file.
    const st = await status();
    expect(st.version).to.equal(`${upstream}+rebuild`);
    expect(st.programs.find((p) => p.name === "idle")).to.include({ instances: 2, ready: 2 });
  });

  it("reinstalling while vigil is stopped leaves it stopped", async function () {
    await ct().run(["systemctl", "stop", UNIT], { timeoutMs: 90_000 });
    await apt(`install -y --reinstall ./${second}`);
    expect((await show()).ActiveState).to.equal("inactive");
    await ct().run(["systemctl", "start", UNIT], { timeoutMs: 90_000 });
  });

  it("apt remove stops vigil and removes the package, keeping the configuration and state", async function () {
    const edited = await ct().run(["cat", CONF]);
    await apt("remove -y vigil");
    expect(await dpkgStatus()).to.equal(`deinstall ok config-files ${upstream}+rebuild-1`);
    const s = await ct().show(UNIT, ["LoadState", "ActiveState"]);
    expect(s.LoadState).to.equal("not-found");
    expect(s.ActiveState).to.equal("inactive");
    expect((await ct().exec(["pgrep", "-f", "vigild"])).code, "no vigild left").to.equal(1);
    for (const path of ["/usr/bin/vigild", "/usr/bin/vigilctl", "/usr/lib/node_modules/vigil", "/usr/lib/systemd/system/vigil.service"]) {
      expect(await exists(path), path).to.equal(false);
    }
    expect(await ct().run(["cat", CONF])).to.equal(edited);
    // The stop vigild made on removal left its report.
    expect(await exists("/var/lib/vigil/last-shutdown.json")).to.equal(true);
  });

  it("apt purge removes the configuration and the state", async function () {
    await apt("purge -y vigil");
    expect((await ct().exec(["dpkg-query", "-W", "-f=${Status}", "vigil"])).stdout).to.not.include("config-files");
    expect(await exists("/etc/vigil")).to.equal(false);
    expect(await exists("/var/lib/vigil")).to.equal(false);
  });
});
