// The clients as applications get them: `make install` (DESTDIR, PREFIX) lays
// the Python wheel and the Node tarball under $PREFIX/share/vigil/; a fresh
// venv (no system site packages) pip-installs the wheel and a fresh npm
// project npm-installs the tarball, both offline, and workers run by that
// venv's python and by node from that project attach to a real vigild:
// ready, heartbeats (a SIGSTOP is caught), shutdown handlers, teardown skip.
// The Node http recipe of the README (CommonJS) runs from the same project.
//
// The same tests run a second time on the wheel and tarball of the .deb
// (`make deb`'s build, unpacked with dpkg-deb -x; PREFIX /usr), or of the
// package VIGIL_TEST_DEB names. dpkg removes what it installed, so only
// `make install`'s files get the uninstall test.
import { expect } from "chai";
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../helpers/net.js";
import { REPO, Vigild, stopAll, waitDead, type LogEntry } from "../../helpers/vigild.js";

const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);
const CLIENT_FIXTURES = join(REPO, "test/fixtures/clients");
const VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;

interface Run {
  code: number | null;
  out: string;
}

/** Runs a command to its end (bounded), with its output for the assertion messages. */
function run(argv: string[], options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: options.cwd ?? REPO,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const guard = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.once("exit", (code) => {
      clearTimeout(guard);
      resolve({ code, out: `$ ${argv.join(" ")}\n${out}` });
    });
  });
}

for (const source of ["make install", "the .deb"] as const) {
  const fromDeb = source === "the .deb";
  const PREFIX = fromDeb ? "/usr" : "/usr/local";

  describe(`client packages from ${source}, in a fresh venv and a fresh npm project`, function () {
    this.timeout(120_000);
    let dir: string;
    let destdir: string;

    /** The one file in $DESTDIR$PREFIX/share/vigil/<sub>/ whose name matches. */
    function installed(sub: string, name: RegExp): string {
      const at = join(destdir, PREFIX, "share/vigil", sub);
      const files = readdirSync(at).filter((f) => name.test(f));
      expect(files, `${at}: ${readdirSync(at).join(", ")}`).to.have.length(1);
      return join(at, files[0]!);
    }

    before(async function () {
      this.timeout(600_000);
      dir = mkdtempSync(join(tmpdir(), "vigil-clients-"));
      destdir = join(dir, "stage");
      if (fromDeb) {
        let deb = process.env.VIGIL_TEST_DEB;
        if (deb === undefined) {
          const build = await run(["bash", "packaging/deb/build.sh", dir], { timeoutMs: 540_000 });
          expect(build.code, build.out).to.equal(0);
          deb = build.out.trim().split("\n").at(-1)!;
        }
        const unpack = await run(["dpkg-deb", "-x", deb, destdir]);
        expect(unpack.code, unpack.out).to.equal(0);
        return;
      }
      // `make install` itself; -o: dist/ is built already, and must not be
      // rebuilt under the running tests.
      const install = await run(["make", "--no-print-directory", "-o", "dist/.built", "install"], {
        env: { PREFIX, DESTDIR: destdir },
        timeoutMs: 540_000,
      });
      expect(install.code, install.out).to.equal(0);
      expect(install.out).to.contain(`${destdir}${PREFIX}/share/vigil/python`);
    });
    after(() => {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });
    afterEach(stopAll);

    it("lays one wheel, one sdist and one npm tarball, of package.json's version", () => {
      expect(installed("python", /\.whl$/)).to.match(new RegExp(`/vigil-${VERSION.replace(/\./g, "\\.")}-py3-none-any\\.whl$`));
      expect(installed("python", /\.tar\.gz$/)).to.match(new RegExp(`/vigil-${VERSION.replace(/\./g, "\\.")}\\.tar\\.gz$`));
      expect(installed("node", /\.tgz$/)).to.match(new RegExp(`/vigil-worker-${VERSION.replace(/\./g, "\\.")}\\.tgz$`));
    });

    describe("Python: the wheel in a venv", function () {
      let venv: string;

      before(async function () {
        this.timeout(300_000);
        venv = join(dir, "venv");
        // Debian's python3 (python3-venv): a venv with no system site packages, so
        // nothing of vigil's `make install` for /usr/bin/python3 is visible in it.
        const created = await run(["/usr/bin/python3", "-m", "venv", venv]);
        expect(created.code, created.out).to.equal(0);
        const before = await run([join(venv, "bin/python"), "-c", "import vigil"], { cwd: dir });
        expect(before.code, "vigil importable in a fresh venv before the install").to.not.equal(0);
        const pip = await run([join(venv, "bin/pip"), "install", "--no-index", "--disable-pip-version-check", installed("python", /\.whl$/)], { cwd: dir });
        expect(pip.code, pip.out).to.equal(0);
      });

      it("imports vigil from the venv's site-packages, with package.json's version and py.typed", async () => {
        const probe = await run(
          [join(venv, "bin/python"), "-c", "import os, vigil; print(vigil.__version__); print(vigil.__file__); print(os.path.exists(os.path.join(os.path.dirname(vigil.__file__), 'py.typed')))"],
          { cwd: dir, env: { PYTHONPATH: "" } },
        );
        expect(probe.code, probe.out).to.equal(0);
        const [, version, file, typed] = probe.out.trim().split("\n");
        expect(version).to.equal(VERSION);
        expect(file).to.match(new RegExp(`^${venv}/lib/python3[.\\d]*/site-packages/vigil/__init__\\.py$`));
        expect(typed).to.equal("True");
      });

      it("a worker run by the venv's python: ready, a SIGSTOP caught, handlers on stop, teardown: skip skips", async () => {
        const command = [join(venv, "bin/python"), join(CLIENT_FIXTURES, "py_worker.py")];
        const v = new Vigild({
          programs: {
            destroy: { command, protocol: "on", heartbeat_timeout: "1s", shutdown: { teardown: "destroy", timeout: "5s" } },
            skip: { command, protocol: "on", heartbeat_timeout: "1s", shutdown: { teardown: "skip", timeout: "5s" } },
          },
        });
        const ready = await v.waitForCount(isMsg(/^(destroy|skip)\/0.* ready after/), 2, 30_000, "both venv workers ready");
        // A worker's stdout and its protocol socket are two channels: its printed
        // line may reach vigild's log after its `ready`.
        const attached = await v.waitForCount(isMsg(/^vigil \S+ from \S+ attached=True/), 2, 10_000, "both venv workers' attach lines");
        for (const line of attached) expect(line.msg).to.contain(`vigil ${VERSION} from ${venv}/lib/`);

        const victim = ready.find((e) => e.program === "destroy")!.pid as number;
        process.kill(victim, "SIGSTOP");
        const hang = await v.waitFor((e) => e.pid === victim && e.phase === "running", 10_000, "the SIGSTOPped worker's hang");
        expect(hang.after_ms as number).to.be.within(1000, 1500);
        expect(await waitDead(victim, 10_000)).to.equal(true);
        await v.waitFor((e) => /^destroy\/0.* ready after/.test(e.msg) && e.pid !== victim, 30_000, "the replacement");

        v.signal("SIGTERM");
        const { code } = await v.waitExit(30_000);
        expect(code, v.tail()).to.equal(0);
        expect(v.logs.filter(isMsg(/^handler ran reason=stop teardown=destroy$/)), v.tail(40)).to.have.length(1);
        expect(v.logs.filter(isMsg(/^handler ran reason=stop teardown=skip$/)), v.tail(40)).to.have.length(1);
        const outcomes = Object.fromEntries(
          v.logs.filter((e) => typeof e.outcome === "string" && e.pid !== victim).map((e) => [e.program as string, e.outcome]),
        );
        expect(outcomes, v.tail(40)).to.deep.equal({ destroy: "clean", skip: "skipped" });
      });
    });

    describe("Node: the tarball in an npm project", function () {
      let project: string;

      before(async function () {
        this.timeout(300_000);
        project = join(dir, "app");
        const init = await run(["mkdir", "-p", project]);
        expect(init.code, init.out).to.equal(0);
        writeFileSync(join(project, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true }, null, 2));
        // A local tarball with no dependencies installs offline.
        const npm = await run(["npm", "install", "--offline", "--no-audit", "--no-fund", installed("node", /\.tgz$/)], { cwd: project });
        expect(npm.code, npm.out).to.equal(0);
        for (const file of ["worker.cjs", "worker.mjs", "types.cts", "types.mts"]) copyFileSync(join(CLIENT_FIXTURES, file), join(project, file));
        copyFileSync(join(REPO, "examples/recipes/node_http.cjs"), join(project, "node_http.cjs"));
      });

      it("installs as @vigil/worker of package.json's version, with no dependencies", () => {
        const manifest = JSON.parse(readFileSync(join(project, "node_modules/@vigil/worker/package.json"), "utf8")) as {
          version: string;
          dependencies?: Record<string, string>;
        };
        expect(manifest.version).to.equal(VERSION);
        expect(manifest.dependencies ?? {}).to.deep.equal({});
        expect(readdirSync(join(project, "node_modules")).filter((n) => !n.startsWith("."))).to.deep.equal(["@vigil"]);
      });

      it("types resolve for require (.cts) and import (.mts) alike", async () => {
        writeFileSync(
          join(project, "tsconfig.json"),
          JSON.stringify({
            compilerOptions: {
              module: "NodeNext",
              moduleResolution: "NodeNext",
              target: "ES2022",
              strict: true,
              noEmit: true,
              types: ["node"],
              typeRoots: [join(REPO, "node_modules/@types")],
            },
            files: ["types.cts", "types.mts"],
          }),
        );
        const tsc = await run([join(REPO, "node_modules/.bin/tsc"), "-p", join(project, "tsconfig.json")], { cwd: project });
        expect(tsc.code, tsc.out).to.equal(0);
      });

      it("a CommonJS and an ES-module worker attach, heartbeat (a SIGSTOP is caught) and get their shutdown handlers", async () => {
        const v = new Vigild({
          programs: {
            cjs: { command: [process.execPath, join(project, "worker.cjs")], protocol: "on", heartbeat_timeout: "1s", shutdown: { timeout: "5s" } },
            esm: { command: [process.execPath, join(project, "worker.mjs")], protocol: "on", heartbeat_timeout: "1s", shutdown: { timeout: "5s" } },
          },
        });
        const ready = await v.waitForCount(isMsg(/^(cjs|esm)\/0.* ready after/), 2, 30_000, "both Node workers ready");
        const installedAt = join(project, "node_modules/@vigil/worker");
        // Each worker prints its line on stdout, which may reach vigild's log after its `ready`.
        const printed = async (program: string) => (await v.waitFor(isMsg(new RegExp(`^${program} worker:`)), 10_000, `${program}'s line`)).msg;
        expect(await printed("cjs"), v.tail()).to.equal(
          `cjs worker: @vigil/worker ${VERSION} from ${installedAt}/cjs/lib/node/worker.js attached=true`,
        );
        expect(await printed("esm"), v.tail()).to.equal(
          `esm worker: @vigil/worker ${VERSION} from file://${installedAt}/esm/lib/node/worker.js attached=true`,
        );

        const victims = new Set<number>();
        for (const program of ["cjs", "esm"]) {
          const victim = ready.find((e) => e.program === program)!.pid as number;
          victims.add(victim);
          process.kill(victim, "SIGSTOP");
          const hang = await v.waitFor((e) => e.pid === victim && e.phase === "running", 10_000, `${program}'s hang`);
          expect(hang.after_ms as number).to.be.within(1000, 1500);
          expect(await waitDead(victim, 10_000)).to.equal(true);
          await v.waitFor((e) => e.program === program && / ready after/.test(e.msg) && e.pid !== victim, 30_000, `${program}'s replacement`);
        }

        v.signal("SIGTERM");
        const { code } = await v.waitExit(30_000);
        expect(code, v.tail()).to.equal(0);
        expect(v.logs.filter(isMsg(/^cjs handler ran reason=stop teardown=destroy$/)), v.tail(40)).to.have.length(1);
        expect(v.logs.filter(isMsg(/^esm handler ran reason=stop teardown=destroy$/)), v.tail(40)).to.have.length(1);
        const outcomes = v.logs
          .filter((e) => typeof e.outcome === "string" && !victims.has(e.pid as number))
          .map((e) => `${String(e.program)} ${String(e.outcome)}`);
        expect(outcomes.sort(), v.tail(40)).to.deep.equal(["cjs clean", "esm clean"]);
      });

      it("the README's Node http recipe (CommonJS) serves on a vigil socket and closes its server on stop", async () => {
        const port = await freePort();
        const v = new Vigild({
          sockets: { http: { listen: `127.0.0.1:${port}` } },
          programs: {
            api: { command: [process.execPath, join(project, "node_http.cjs")], protocol: "on", instances: 2, sockets: ["http"], shutdown: { timeout: "5s" } },
          },
        });
        await v.waitFor(isMsg(/^all 2 workers ready/), 30_000);
        const bodies: string[] = [];
        for (let i = 0; i < 4; i += 1) {
          const res = await fetch(`http://127.0.0.1:${port}/`);
          expect(res.status).to.equal(200);
          bodies.push(await res.text());
        }
        for (const body of bodies) expect(body).to.match(/^worker [01] served \d+\n$/);

        v.signal("SIGTERM");
        const { code } = await v.waitExit(30_000);
        expect(code, v.tail()).to.equal(0);
        const closed = v.logs.filter(isMsg(/^closed after \d+ requests \(stop\)$/));
        expect(closed, v.tail(40)).to.have.length(2);
        expect(closed.reduce((n, e) => n + Number(/after (\d+)/.exec(e.msg)![1]), 0)).to.equal(4);
        const exits = v.logs.filter((e) => typeof e.outcome === "string");
        expect(exits.map((e) => e.outcome)).to.deep.equal(["clean", "clean"]);
      });
    });

    // Last: mocha runs a suite's own tests before its nested suites.
    if (!fromDeb) describe("uninstall", function () {
      it("make uninstall removes the client packages", async function () {
        const uninstall = await run(["make", "--no-print-directory", "uninstall"], { env: { PREFIX, DESTDIR: destdir } });
        expect(uninstall.code, uninstall.out).to.equal(0);
        expect(existsSync(join(destdir, PREFIX, "share/vigil")), uninstall.out).to.equal(false);
      });
    });
  });
}
