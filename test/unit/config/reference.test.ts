// docs/configuration.md names every key of vigil.yaml, and only those: the
// keys are read from configSchema itself (the schema the loader uses), so a
// key added there without a section in the reference fails here. Each key's
// section says its type, its default (the schema's, where it has a plain
// one) and gives an example.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import type { z } from "zod";
import { configJsonSchema, keyNode } from "../../../daemon/config/json-schema.js";
import { configSchema } from "../../../daemon/config/schema.js";
import { referenceFile, referenceSections } from "../../../scripts/reference.js";
import { REPO } from "../../helpers/repo.js";

const REFERENCE = referenceFile(REPO);
/** How the reference writes the name of a program or socket in a key. */
const NAME = "NAME";

/**
 * Every key a file may hold, as "programs.NAME.shutdown.timeout", parents
 * before children. The walk follows what the file holds: through defaults
 * and into the input side of transforms; a record's entries are NAME.
 */
export function schemaKeys(schema: z.core.$ZodType, prefix = ""): string[] {
  // Ifs, not a switch: the walk looks at five kinds of schema out of zod's dozens.
  const def = (schema as z.core.$ZodTypes)._zod.def;
  if (def.type === "pipe") return schemaKeys(def.in._zod.def.type === "transform" ? def.out : def.in, prefix);
  if (def.type === "default" || def.type === "prefault" || def.type === "optional") return schemaKeys(def.innerType, prefix);
  if (def.type === "record") return schemaKeys(def.valueType, `${prefix}.${NAME}`);
  if (def.type === "object") {
    return Object.entries(def.shape).flatMap(([key, value]) => {
      const path = prefix ? `${prefix}.${key}` : key;
      return [path, ...schemaKeys(value, path)];
    });
  }
  return [];
}

describe("config: docs/configuration.md, the reference of every key", () => {
  const keys = schemaKeys(configSchema);
  const sections = referenceSections(readFileSync(REFERENCE, "utf8"));
  const documented = sections.map((s) => s.key);

  it("reads the keys from the schema the loader uses", () => {
    expect(keys).to.include.members(["metrics.listen", "state_dir", "sockets.NAME.backlog", "programs.NAME.command", "programs.NAME.shutdown.timeout"]);
    expect(keys.length).to.be.above(35);
  });

  it("has a section for every key of the schema", () => {
    expect(keys.filter((k) => !documented.includes(k))).to.deep.equal([]);
  });

  it("names no key the schema lacks, and each key once", () => {
    expect(documented.filter((k) => !keys.includes(k))).to.deep.equal([]);
    expect(documented.filter((k, i) => documented.indexOf(k) !== i)).to.deep.equal([]);
  });

  it("gives every key its type, its default (the schema's) and an example", () => {
    const json = configJsonSchema();
    const problems: string[] = [];
    for (const { key, body } of sections) {
      for (const field of ["Type", "Default", "Example"]) {
        if (!new RegExp(`^- ${field}:`, "m").test(body)) problems.push(`${key}: no "- ${field}:" line`);
      }
      const fallback = keyNode(json, key)?.default;
      const line = /^- Default: (.*)$/m.exec(body)?.[1] ?? "";
      if ((typeof fallback === "string" || typeof fallback === "number") && !line.includes(`\`${fallback}\``)) {
        problems.push(`${key}: the default is ${JSON.stringify(fallback)}, the reference says "${line}"`);
      }
    }
    expect(problems).to.deep.equal([]);
  });
});
