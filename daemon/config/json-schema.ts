// The JSON Schema of vigil.yaml, for editors (yaml-language-server completes
// and checks a file whose first line is the modeline) and for scripts. It is
// generated from configSchema, the schema the loader itself uses, with each
// key's input form (schema.ts, inputForms): a file this schema accepts may
// still fail checks that span keys (a socket no program uses, handlers_timeout
// above timeout); `vigild --check-config` has the last word.
import { z } from "zod";
import { configSchema, inputForms } from "./schema.js";

export type JSONSchema = z.core.JSONSchema.JSONSchema;

/** Where `make install` puts the schema: beside the default configuration. */
export const INSTALLED_SCHEMA = "/etc/vigil/vigil.schema.json";

/**
 * `descriptions` (key -> markdown, e.g. "programs.NAME.command") become each
 * key's description: the build passes the reference, docs/configuration.md.
 */
export function configJsonSchema(descriptions: ReadonlyMap<string, string> = new Map()): JSONSchema {
  const generated = z.toJSONSchema(configSchema, {
    // What the file holds, not what the loader makes of it.
    io: "input",
    // yaml-language-server (VS Code's YAML, coc-yaml, lsp-mode) supports up to draft 7.
    target: "draft-07",
    metadata: inputForms,
    // A key whose form could not be described must fail the build, not become "anything".
    unrepresentable: "throw",
    // z.toJSONSchema drops the default of a key behind a transform (state_dir's,
    // which the loader computes): the form's own default is the one to show.
    override: ({ zodSchema, jsonSchema, path }) => {
      const form = inputForms.get(zodSchema);
      if (form?.default !== undefined) jsonSchema.default = form.default;
      // programs: starts with a transform (mapOf's check), which zod takes as
      // optional; at the top level, a key without a default is required.
      if (path.length === 0 && jsonSchema.properties) {
        const props = jsonSchema.properties;
        jsonSchema.required = Object.keys(props).filter((key) => {
          const prop = props[key];
          return typeof prop === "object" && prop.default === undefined;
        });
      }
    },
  });
  for (const [key, text] of descriptions) {
    const node = keyNode(generated, key);
    if (!node) throw new Error(`the reference describes ${key}, which the schema lacks`);
    // VS Code shows markdownDescription; other editors the plain description.
    node.description = text.replace(/`/g, "");
    node.markdownDescription = text;
  }
  return {
    $schema: generated.$schema,
    $id: `file://${INSTALLED_SCHEMA}`,
    title: "vigil.yaml",
    description: "The configuration of vigild, the vigil process supervisor (docs/configuration.md, vigil.yaml(5)).",
    ...generated,
  };
}

/** The schema node of a key ("programs.NAME.shutdown.timeout"; NAME: an entry of a mapping of names). */
export function keyNode(root: JSONSchema, key: string): JSONSchema | undefined {
  let node: JSONSchema | undefined = root;
  for (const segment of key.split(".")) {
    if (!node) return undefined;
    const next: JSONSchema | boolean | undefined = segment === "NAME" ? node.additionalProperties : node.properties?.[segment];
    node = typeof next === "object" ? next : undefined;
  }
  return node;
}
