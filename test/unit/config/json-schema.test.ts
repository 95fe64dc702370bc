// The JSON Schema of vigil.yaml (daemon/config/json-schema.ts), checked with
// a real JSON Schema validator (ajv, draft 7: what the YAML language server reads) on every configuration in
// the repository: what the loader accepts it accepts, and it rejects the bad
// fixtures the loader rejects, except the few whose fault spans keys.
import { expect } from "chai";
import { Ajv, type ErrorObject } from "ajv";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseDocument } from "yaml";
import { parseConfig, ConfigError } from "../../../daemon/config/load.js";
import { configJsonSchema, INSTALLED_SCHEMA } from "../../../daemon/config/json-schema.js";
import { DURATION_PATTERN, parseDuration, parseRestartLimit, parseSize, RESTART_LIMIT_PATTERN, SIZE_PATTERN } from "../../../daemon/config/duration.js";
import { keyDescriptions } from "../../../scripts/reference.js";
import { REPO } from "../../helpers/repo.js";

const FIXTURES = join(REPO, "test/fixtures/config");
/** What `make build` writes and `make install` installs. */
const BUILT = join(REPO, "dist/vigil.schema.json");

/** Bad fixtures the schema accepts, each with why a JSON Schema cannot see its fault. */
const CROSS_CHECKS: Record<string, string> = {
  "bad-backoff.yaml": "restart.backoff_max must be >= backoff_initial: an order between two keys' durations",
  "bad-handlers-timeout.yaml": "shutdown.handlers_timeout must be <= timeout: an order between two keys' durations",
  "bad-heartbeat.yaml": "heartbeat_timeout must be 0 or at least 100ms: a bound on a duration's value, not its form",
  "bad-socket-same-address.yaml": "two sockets on one address: a uniqueness of values across entries",
  "bad-socket-unknown.yaml": "a program names a socket that sockets: lacks: a reference between sections",
  "bad-socket-unused.yaml": "a socket no program uses: a reference between sections",
};
/** Bad fixtures that are not YAML at all: the YAML parser rejects them before any schema. */
const NOT_YAML: Record<string, string> = {
  "bad-duplicate-key.yaml": "a key given twice in one mapping",
  "bad-syntax.yaml": "a colon inside a plain scalar",
};

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

function load(file: string): unknown {
  const doc = parseDocument(readFileSync(file, "utf8"));
  if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
  return doc.toJS();
}

/** Where an ajv error points, as the loader's dotted key ("programs.web.command[1]", "(root)"). */
function errorKey(e: ErrorObject): string {
  const segments = e.instancePath.split("/").slice(1).map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
  const params = e.params as { additionalProperty?: string; missingProperty?: string; propertyName?: string };
  const extra = params.additionalProperty ?? params.missingProperty ?? params.propertyName;
  if (extra !== undefined) segments.push(extra);
  const text = segments.map((s) => (/^\d+$/.test(s) && e.instancePath.includes("/command/") ? `[${s}]` : `.${s}`)).join("");
  return text.replace(/^\./, "") || "(root)";
}

describe("config: the JSON Schema of vigil.yaml", () => {
  const schema = configJsonSchema(keyDescriptions(REPO));
  const ajv = new Ajv({ strict: true, allErrors: true });
  // The description VS Code shows, in markdown: an annotation, as description is.
  ajv.addKeyword({ keyword: "markdownDescription", schemaType: "string" });
  const validate = ajv.compile(schema);

  it("is what the build wrote (dist/vigil.schema.json), and a valid draft 7 schema", () => {
    expect(existsSync(BUILT), `${BUILT}: run make build`).to.equal(true);
    expect(JSON.parse(readFileSync(BUILT, "utf8"))).to.deep.equal(schema);
    expect(ajv.validateSchema(schema), ajv.errorsText(ajv.errors)).to.equal(true);
    expect(schema.$id).to.equal(`file://${INSTALLED_SCHEMA}`);
    expect(schema.$schema).to.equal("http://json-schema.org/draft-07/schema#");
  });

  it("describes every key with its default, as the file is written (durations as strings)", () => {
    const top = schema.properties!;
    expect(Object.keys(top)).to.deep.equal(["metrics", "log", "dbus", "watchdog", "state_dir", "sockets", "programs"]);
    expect(schema.required).to.deep.equal(["programs"]);
    const program = (top.programs as { additionalProperties: { properties: Record<string, { default?: unknown }>; required: string[] } }).additionalProperties;
    expect(program.required).to.deep.equal(["command"]);
    expect(program.properties.ready_timeout!.default).to.equal("30s");
    expect(program.properties.instances!.default).to.equal(1);
    expect((top.state_dir as { default?: unknown }).default).to.equal("/var/lib/vigil");
    // Each key carries its section of docs/configuration.md, for an editor's hover.
    expect(program.properties.ready_timeout as { description?: string }).to.have.property("description").that.match(/^- Type: duration/);
  });

  it("rejects a file without programs, as the loader does", () => {
    const text = "log: { level: info }\n";
    expect(() => parseConfig(text, "no-programs.yaml")).to.throw(ConfigError, /programs/);
    expect(validate({ log: { level: "info" } })).to.equal(false);
    expect(validate.errors!.map(errorKey)).to.include("programs");
  });

  const good = [
    join(REPO, "units/vigil.yaml"),
    ...yamlFiles(join(REPO, "examples")),
    ...readdirSync(FIXTURES).filter((f) => f.startsWith("good-")).map((f) => join(FIXTURES, f)),
  ];
  it("finds the configurations to check", () => {
    expect(good.map((f) => relative(REPO, f))).to.include.members(["units/vigil.yaml", "examples/vigil.yaml", "test/fixtures/config/good-full.yaml"]);
  });
  for (const file of good) {
    it(`accepts ${relative(REPO, file)}, which the loader accepts`, () => {
      parseConfig(readFileSync(file, "utf8"), file);
      const ok = validate(load(file));
      expect(ok, ajv.errorsText(validate.errors)).to.equal(true);
    });
  }

  const bad = readdirSync(FIXTURES).filter((f) => f.startsWith("bad-")).sort();
  for (const name of bad) {
    const file = join(FIXTURES, name);
    const expected = /^# expect: \d+ (.*)$/m.exec(readFileSync(file, "utf8"))?.[1];
    if (NOT_YAML[name]) {
      it(`leaves ${name} to the YAML parser (${NOT_YAML[name]})`, () => {
        expect(() => load(file)).to.throw();
      });
    } else if (CROSS_CHECKS[name]) {
      it(`accepts ${name}, which only the loader rejects: ${CROSS_CHECKS[name]}`, () => {
        expect(() => parseConfig(readFileSync(file, "utf8"), file)).to.throw(ConfigError);
        expect(validate(load(file)), "the schema rejects it now: take it off CROSS_CHECKS").to.equal(true);
      });
    } else {
      it(`rejects ${name} at ${expected}, as the loader does`, () => {
        expect(() => parseConfig(readFileSync(file, "utf8"), file)).to.throw(ConfigError);
        expect(validate(load(file))).to.equal(false);
        expect(validate.errors!.map(errorKey)).to.include(expected);
      });
    }
  }

  it("is named by the modeline on the first line of the default configuration and of each example", () => {
    expect(readFileSync(join(REPO, "units/vigil.yaml"), "utf8").split("\n")[0]).to.equal(`# yaml-language-server: $schema=${INSTALLED_SCHEMA}`);
    for (const file of yamlFiles(join(REPO, "examples"))) {
      const first = readFileSync(file, "utf8").split("\n")[0]!;
      const target = /^# yaml-language-server: \$schema=(\S+)$/.exec(first)?.[1];
      expect(target, `${relative(REPO, file)}: first line`).to.be.a("string");
      expect(resolve(dirname(file), target!), relative(REPO, file)).to.equal(BUILT);
    }
  });

  // The patterns are written beside their parsers; these keep the two in step.
  const agree = (pattern: string, parse: (v: string) => unknown, samples: string[]) => {
    const re = new RegExp(pattern, "u");
    const accepts = (v: string) => {
      try {
        parse(v);
        return true;
      } catch {
        return false;
      }
    };
    expect(samples.filter((s) => re.test(s) !== accepts(s))).to.deep.equal([]);
  };
  it("takes the same durations, sizes and restart limits as the parsers", () => {
    agree(DURATION_PATTERN, parseDuration, ["0", "250ms", "1.5s", "5s", "2m", "1h", "1h30m", "1h30m15s500ms", "0s", "5", "5 s", "5 seconds", "1s2h", "5s5s", "ms", "", "1.s", ".5s", "2M", "10m5ms", "-1s", " 5s"]);
    agree(SIZE_PATTERN, parseSize, ["0", "1000", "512MiB", "1GiB", "100KiB", "512MB", "1.5GB", "512 MiB", "512mib", "1b", "512M", "512Mi", "MiB", "-1", "1 GiB ", "1e3", "512XB"]);
    agree(RESTART_LIMIT_PATTERN, parseRestartLimit, ["10 in 60s", "1 in 1m30s", " 3 in 5s ", "0 in 60s", "10 in 0", "10 per minute", "10in60s", "10 in 60", "010 in 1s", "10 in  60s"]);
  });
});
