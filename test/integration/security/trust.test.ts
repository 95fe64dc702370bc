// Running as root, vigild refuses a configuration file or a worker program
// that another user could change, as sshd's StrictModes does.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { untrustedBecause, programFiles, type StatFn } from "../../../daemon/config/trust.js";
import { VIGILD } from "../../helpers/vigild.js";

function fakeFs(entries: Record<string, { uid: number; mode: number; dir?: boolean }>): StatFn {
  return (file) => {
    const e = entries[file];
    if (!e) return null;
    return { uid: e.uid, mode: e.mode, isFile: () => !e.dir, isDirectory: () => e.dir === true };
  };
}

describe("trust in files (StrictModes)", () => {
  const fs = fakeFs({
    "/": { uid: 0, mode: 0o755, dir: true },
    "/srv": { uid: 0, mode: 0o755, dir: true },
    "/srv/app": { uid: 33, mode: 0o755, dir: true },
    "/srv/app/worker.py": { uid: 33, mode: 0o644 },
    "/srv/open": { uid: 0, mode: 0o777, dir: true },
    "/srv/open/w.py": { uid: 0, mode: 0o644 },
    "/tmp": { uid: 0, mode: 0o1777, dir: true },
    "/tmp/w.py": { uid: 0, mode: 0o644 },
    "/etc": { uid: 0, mode: 0o755, dir: true },
    "/etc/vigil.yaml": { uid: 0, mode: 0o666 },
  });

  it("names what others could change: the file, its owner, a directory above it", () => {
    expect(untrustedBecause("/etc/vigil.yaml", null, fs)).to.equal("/etc/vigil.yaml is writable by everyone (mode 0666)");
    expect(untrustedBecause("/srv/app/worker.py", null, fs)).to.equal("/srv/app/worker.py is owned by uid 33, not root");
    expect(untrustedBecause("/srv/open/w.py", null, fs)).to.equal("/srv/open is writable by everyone (mode 0777)");
  });

  it("allows the worker's own user, and sticky directories like /tmp", () => {
    expect(untrustedBecause("/srv/app/worker.py", 33, fs)).to.equal(null);
    expect(untrustedBecause("/tmp/w.py", null, fs)).to.equal(null);
  });

  it("finds the executable on PATH and script arguments", () => {
    const files = fakeFs({ "/usr/bin/python3": { uid: 0, mode: 0o755 }, "/srv/app/worker.py": { uid: 33, mode: 0o644 } });
    expect(programFiles(["python3", "-u", "/srv/app/worker.py", "--port", "80"], null, "/usr/local/bin:/usr/bin", files)).to.deep.equal([
      "/usr/bin/python3",
      "/srv/app/worker.py",
    ]);
  });
});

describe("vigild as root refuses files others can change", function () {
  this.timeout(20_000);
  let dir: string;
  before(function () {
    if (process.getuid?.() !== 0) {
      console.log("    (skipped: these checks apply when vigild runs as root, and this test is not root)");
      this.skip();
    }
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "vigil-trust-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function check(config: string): { code: number | null; stderr: string } {
    const r = spawnSync(process.execPath, [VIGILD, "--check-config", "--config", config], { encoding: "utf8" });
    return { code: r.status, stderr: r.stderr };
  }

  it("a configuration file writable by others: exit 78 naming the file and why", () => {
    const config = join(dir, "vigil.yaml");
    writeFileSync(config, "programs:\n  p:\n    command: [sleep, '1']\n");
    chmodSync(config, 0o666);
    const r = check(config);
    expect(r.code).to.equal(78);
    expect(r.stderr).to.contain(`${config}:0: (file): refusing a configuration file others can change: ${config} is writable by everyone (mode 0666)`);
    chmodSync(config, 0o644);
    expect(check(config).code).to.equal(0);
  });

  it("a worker script owned by another user, or in a directory others can write: exit 78 naming the line", () => {
    const app = join(dir, "app");
    mkdirSync(app);
    const script = join(app, "worker.py");
    writeFileSync(script, "print('hi')\n");
    chownSync(script, 65534, 65534);
    const config = join(dir, "vigil.yaml");
    writeFileSync(config, `programs:\n  web:\n    command: [python3, ${script}]\n`);
    const r = check(config);
    expect(r.code).to.equal(78);
    expect(r.stderr).to.contain(`${config}:3: programs.web.command: refusing a program others can change: ${script} is owned by uid 65534, not root`);
    // The worker's own user may own its code.
    writeFileSync(config, `programs:\n  web:\n    command: [python3, ${script}]\n    user: nobody\n`);
    expect(check(config).code).to.equal(0);
    chownSync(script, 0, 0);
    chmodSync(app, 0o777);
    writeFileSync(config, `programs:\n  web:\n    command: [python3, ${script}]\n`);
    expect(check(config).stderr).to.contain(`${app} is writable by everyone (mode 0777)`);
  });
});
