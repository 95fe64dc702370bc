// `make build` step: writes the JSON Schema of vigil.yaml (daemon/config/json-schema.ts).
//
//   node dist/scripts/json-schema.js OUTPUT
import { writeFileSync } from "node:fs";
import { configJsonSchema } from "../daemon/config/json-schema.js";

const output = process.argv[2];
if (!output) {
  console.error("usage: node dist/scripts/json-schema.js OUTPUT");
  process.exit(64);
}
writeFileSync(output, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
