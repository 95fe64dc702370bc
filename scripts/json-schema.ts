// `make build` step: writes the JSON Schema of vigil.yaml (daemon/config/json-schema.ts),
// each key described by its section of docs/configuration.md.
//
//   node dist/scripts/json-schema.js OUTPUT
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { configJsonSchema } from "../daemon/config/json-schema.js";
import { keyDescriptions } from "./reference.js";

/** dist/scripts/ -> the repository. */
const REPO = fileURLToPath(new URL("../..", import.meta.url));

const output = process.argv[2];
if (!output) {
  console.error("usage: node dist/scripts/json-schema.js OUTPUT");
  process.exit(64);
}
writeFileSync(output, `${JSON.stringify(configJsonSchema(keyDescriptions(REPO)), null, 2)}\n`);
