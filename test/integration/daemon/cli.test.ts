// vigild's command line as a user meets it: --version, --check-config on
// good and broken files (exit 78, file:line: key), bad arguments, and a bad
// file at start that never starts a worker.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, VIGILD } from "../../helpers/vigild.js";

const CONFIGS = join(REPO, "test/fixtures/config");

function vigild(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [VIGILD, ...args], { encoding: "utf8", timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("vigild command line", function () {
  this.timeout(30_000);

  it("--version prints the package version", () => {
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string };
    const r = vigild("--version");
    expect(r.code).to.equal(0);
    expect(r.stdout.trim()).to.equal(`vigild ${pkg.version}`);
  });

  it("--check-config accepts the bundled example and the default configuration", () => {
    for (const file of ["examples/vigil.yaml", "test/fixtures/config/good-full.yaml"]) {
      const r = vigild("--check-config", "--config", join(REPO, file));
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/: valid \(\d+ programs, \d+ workers\)/);
    }
  });

  const bad = readdirSync(CONFIGS).filter((f) => f.startsWith("bad-"));
  it(`has at least eight broken files to check (${bad.length})`, () => {
    expect(bad.length).to.be.at.least(8);
  });

  for (const file of bad) {
    it(`--check-config rejects ${file} with exit 78 naming its line and key`, () => {
      const path = join(CONFIGS, file);
      const [, line, key] = /^# expect: (\d+) (.+)$/m.exec(readFileSync(path, "utf8"))!;
      const r = vigild("--check-config", "--config", path);
      expect(r.code).to.equal(78);
      expect(r.stdout).to.equal("");
      const first = r.stderr.split("\n")[0]!;
      expect(first.startsWith(`${path}:${line}: ${key}: `), first).to.equal(true);
    });
  }

  it("starting on a broken file exits 78 before any worker runs", () => {
    const r = vigild("--config", join(CONFIGS, "bad-negative-instances.yaml"));
    expect(r.code).to.equal(78);
    expect(r.stderr).to.match(/instances/);
  });

  it("a missing file is a configuration error too", () => {
    const r = vigild("--check-config", "--config", "/nonexistent/vigil.yaml");
    expect(r.code).to.equal(78);
    expect(r.stderr).to.contain("/nonexistent/vigil.yaml");
  });

  it("an unknown argument is a usage error (64) with the usage text", () => {
    const r = vigild("--frobnicate");
    expect(r.code).to.equal(64);
    expect(r.stderr).to.contain("unknown argument: --frobnicate");
    expect(r.stderr).to.contain("usage: vigild");
  });
});
