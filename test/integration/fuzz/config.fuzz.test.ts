// Property tests of the configuration loader: mutations of a valid file and
// random YAML either load or fail with a ConfigError whose every issue names
// a line inside the file and a key; nothing else ever escapes.
import { expect } from "chai";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, parseConfig } from "../../../daemon/config/load.js";
import { REPO } from "../../helpers/vigild.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const GOOD = readFileSync(join(REPO, "test/fixtures/config/good-full.yaml"), "utf8");
const LINES = GOOD.split("\n");

function check(text: string): void {
  try {
    const config = parseConfig(text, "/fuzz/vigil.yaml");
    expect(config.programs.length).to.be.at.least(1);
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(ConfigError);
    const lines = text.split("\n").length;
    for (const issue of (err as ConfigError).issues) {
      expect(issue.file).to.equal("/fuzz/vigil.yaml");
      expect(issue.line).to.be.within(0, lines + 1);
      expect(issue.key).to.be.a("string").and.not.equal("");
      expect(issue.message).to.be.a("string").and.not.equal("");
    }
  }
}

const scalar = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom("-1", "0", "5 seconds", "1e400", "~", "null", "[]", "{}", "&a [*a]", "!!binary x", "1h30m", "99999999999h", "SIGKILL", "'\\u0000'"),
);

describe("fuzz: configuration loader", function () {
  this.timeout(120_000);

  it("line mutations of a valid file load or name their line and key", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: LINES.length - 1 }), fc.oneof(fc.constant("delete"), fc.constant("dup"), scalar.map(String))), { maxLength: 6 }),
        (edits) => {
          const lines = [...LINES];
          for (const [at, edit] of edits) {
            if (edit === "delete") lines.splice(at, 1);
            else if (edit === "dup") lines.splice(at, 0, lines[at] ?? "");
            else {
              const line = lines[at] ?? "";
              const colon = line.indexOf(":");
              lines[at] = colon === -1 ? `${line}${edit}` : `${line.slice(0, colon + 1)} ${edit}`;
            }
          }
          check(lines.join("\n"));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("random YAML values at every level never escape as anything but a ConfigError", () => {
    const yamlish = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: "small" }, scalar, fc.array(tie("value"), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 12 }), tie("value"), { maxKeys: 5 })),
    })).value;
    fc.assert(
      fc.property(yamlish, fc.dictionary(fc.string({ maxLength: 10 }), yamlish, { maxKeys: 3 }), (top, program) => {
        check(JSON.stringify({ programs: { p: { command: ["x"], ...program } }, extra: top }));
        check(JSON.stringify(top));
      }),
      { numRuns: RUNS },
    );
  });

  it("random bytes are a syntax error or a validation error, with a line", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 400 }), (text) => check(text)),
      { numRuns: RUNS },
    );
  });
});
