import { expect } from "chai";
import { readdirSync, readFileSync } from "node:fs";
import { ConfigError, loadConfigFile, parseConfig } from "../../../daemon/config/load.js";
import type { Config, ProgramConfig } from "../../../daemon/config/types.js";
import { join } from "node:path";
import { REPO } from "../../helpers/repo.js";

// Fixtures are not compiled: they are read from the source tree.
const FIXTURES = join(REPO, "test/fixtures/config") + "/";

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

const PROGRAM_DEFAULTS: Omit<ProgramConfig, "name" | "command"> = {
  instances: 1,
  cwd: null,
  env: {},
  user: null,
  protocol: "auto",
  sockets: [],
  readyTimeoutMs: 30_000,
  heartbeatTimeoutMs: 10_000,
  stackDumpGraceMs: 250,
  restart: { policy: "always", backoffInitialMs: 100, backoffMaxMs: 30_000, limit: { count: 10, windowMs: 60_000 } },
  recycle: { maxAgeMs: 0, maxMemoryBytes: 0 },
  shutdown: { signal: "SIGTERM", handlersTimeoutMs: 2_000, teardown: "destroy", teardownHangAfterMs: 1_000, timeoutMs: 5_000 },
};

describe("config/load", () => {
  let savedStateDirectory: string | undefined;
  beforeEach(() => {
    savedStateDirectory = process.env.STATE_DIRECTORY;
    delete process.env.STATE_DIRECTORY;
  });
  afterEach(() => {
    if (savedStateDirectory === undefined) delete process.env.STATE_DIRECTORY;
    else process.env.STATE_DIRECTORY = savedStateDirectory;
  });

  it("loads a file with every key set", () => {
    const file = `${FIXTURES}good-full.yaml`;
    const expected: Config = {
      file,
      metrics: { listen: { host: "::1", port: 0 } },
      log: { level: "debug", format: "json" },
      dbus: { bus: "session" },
      watchdog: { maxLoopLagMs: 1_500 },
      stateDir: "/tmp/vigil-state",
      sockets: [
        { name: "http", listen: { kind: "tcp", host: "::", port: 8080 }, backlog: 128 },
        { name: "admin", listen: { kind: "unix", path: "/run/app/admin.sock" }, backlog: 1024 },
      ],
      programs: [
        {
          name: "web",
          command: ["python3", "/srv/app/worker.py", "--port", "8080"],
          instances: 4,
          cwd: "/srv/app",
          env: { APP_ENV: "production", EMPTY: "" },
          user: "www-data",
          protocol: "on",
          sockets: ["http", "admin"],
          readyTimeoutMs: 90_000,
          heartbeatTimeoutMs: 0,
          stackDumpGraceMs: 500,
          restart: { policy: "on-failure", backoffInitialMs: 200, backoffMaxMs: 60_000, limit: { count: 5, windowMs: 120_000 } },
          recycle: { maxAgeMs: 6 * 3_600_000, maxMemoryBytes: 512 * 2 ** 20 },
          shutdown: { signal: "SIGINT", handlersTimeoutMs: 3_000, teardown: "auto", teardownHangAfterMs: 2_000, timeoutMs: 10_000 },
        },
        // Listed after "web" in the file, though JavaScript would order the key "10" first.
        { name: "10", command: ["/usr/bin/env", "node"], ...PROGRAM_DEFAULTS, protocol: "off" },
      ],
    };
    expect(loadConfigFile(file)).to.deep.equal(expected);
  });

  it("fills every default around a bare program", () => {
    const config = parseConfig("programs:\n  web:\n    command: [app]\n", "vigil.yaml");
    expect(config).to.deep.equal({
      file: `${process.cwd()}/vigil.yaml`,
      metrics: { listen: { host: "127.0.0.1", port: 9850 } },
      log: { level: "info", format: "auto" },
      dbus: { bus: "auto" },
      watchdog: { maxLoopLagMs: 1_000 },
      stateDir: "/var/lib/vigil",
      sockets: [],
      programs: [{ name: "web", command: ["app"], ...PROGRAM_DEFAULTS }],
    });
  });

  it("takes the default state_dir from the first entry of $STATE_DIRECTORY", () => {
    process.env.STATE_DIRECTORY = "/var/lib/vigil-a:/var/lib/vigil-b";
    expect(parseConfig("programs: { web: { command: [app] } }", "v.yaml").stateDir).to.equal("/var/lib/vigil-a");
  });

  it('turns metrics.listen "off" into null and accepts port 0', () => {
    const listen = (value: string) => parseConfig(`metrics: { listen: "${value}" }\nprograms: { w: { command: [a] } }`, "v.yaml").metrics.listen;
    expect(listen("off")).to.equal(null);
    expect(listen("localhost:0")).to.deep.equal({ host: "localhost", port: 0 });
    expect(() => listen("127.0.0.1:65536")).to.throw(ConfigError);
  });

  it('normalises "TERM" to "SIGTERM"', () => {
    const config = parseConfig("programs: { w: { command: [a], shutdown: { signal: term } } }", "v.yaml");
    expect(config.programs[0]!.shutdown.signal).to.equal("SIGTERM");
  });

  it("returns a deeply frozen result", () => {
    const config = loadConfigFile(`${FIXTURES}good-full.yaml`);
    const program = config.programs[0]!;
    for (const part of [config, config.metrics.listen, config.programs, program, program.command, program.env, program.restart.limit]) {
      expect(Object.isFrozen(part)).to.equal(true);
    }
  });

  it("reports every problem, sorted by line, one per line of the message", () => {
    const text = [
      "programs:", //          1
      "  web:", //             2
      "    command: [app]", // 3
      "    instances: 0", //   4
      "    colour: red", //    5
      "log:", //               6
      "  level: loud", //      7
      "  bogus: 1", //         8
    ].join("\n");
    const error = configError(() => parseConfig(text, "/etc/vigil/vigil.yaml"));
    expect(error.issues.map((i) => [i.line, i.key])).to.deep.equal([
      [4, "programs.web.instances"],
      [5, "programs.web.colour"],
      [7, "log.level"],
      [8, "log.bogus"],
    ]);
    expect(error.message.split("\n")).to.have.length(4);
    expect(error.message.split("\n")[0]).to.equal("/etc/vigil/vigil.yaml:4: programs.web.instances: must be an integer >= 1, got 0");
    expect(error.message).to.include("/etc/vigil/vigil.yaml:8: log.bogus: unknown key; expected one of: level, format");
  });

  it('refuses a "__proto__" key, which a zod record would silently drop', () => {
    const error = configError(() => parseConfig("programs:\n  w: { command: [a] }\n  __proto__: { command: [b] }\n", "v.yaml"));
    expect(error.message).to.equal("v.yaml:3: programs.__proto__: is a reserved name");
  });

  it("names a missing file with line 0", () => {
    const error = configError(() => loadConfigFile("/nonexistent/vigil.yaml"));
    expect(error.issues).to.deep.equal([
      { file: "/nonexistent/vigil.yaml", line: 0, key: "(file)", message: "cannot read config file: no such file" },
    ]);
    expect(error.message).to.equal("/nonexistent/vigil.yaml:0: (file): cannot read config file: no such file");
  });

  describe("bad fixtures", () => {
    const fixtures = readdirSync(FIXTURES).filter((name) => /^bad-.*\.yaml$/.test(name)).sort();
    it("has at least ten", () => expect(fixtures.length).to.be.at.least(10));

    for (const name of fixtures) {
      it(name, () => {
        const file = `${FIXTURES}${name}`;
        const expectation = /^# expect: (\d+) (.+)$/m.exec(readFileSync(file, "utf8").split("\n")[0]!);
        expect(expectation, "first line must be '# expect: LINE KEY'").to.not.equal(null);
        const [, line, key] = expectation!;
        const error = configError(() => loadConfigFile(file));
        expect(error.issues.length).to.be.at.least(1);
        expect({ line: error.issues[0]!.line, key: error.issues[0]!.key }).to.deep.equal({ line: Number(line), key });
        const first = error.message.split("\n")[0]!;
        expect(first.startsWith(`${file}:${line}: ${key}: `), first).to.equal(true);
        expect(first.length).to.be.greaterThan(`${file}:${line}: ${key}: `.length);
      });
    }
  });
});
