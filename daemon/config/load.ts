// Reads vigil.yaml into a frozen Config, or throws one ConfigError naming the
// file, line and key of every problem found.
import { readFileSync } from "node:fs";
import path from "node:path";
import { isCollection, isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Document } from "yaml";
import type { z } from "zod";
import { ConfigError, type ConfigIssue } from "./errors.js";
import { configSchema } from "./schema.js";
import { programFiles, untrustedBecause } from "./trust.js";
import { resolveUser } from "./users.js";
import type { Config } from "./types.js";

export { ConfigError, type ConfigIssue } from "./errors.js";

export interface LoadOptions {
  /** Refuse files that someone other than root can change (vigild runs as root). */
  requireTrusted?: boolean;
  /** PATH used to find worker commands for that check. */
  pathEnv?: string;
}

export function loadConfigFile(file: string, options: LoadOptions = {}): Config {
  const absolute = path.resolve(file);
  if (options.requireTrusted) {
    const why = untrustedBecause(absolute);
    if (why) throw new ConfigError([{ file: absolute, line: 0, key: "(file)", message: `refusing a configuration file others can change: ${why}` }]);
  }
  let text: string;
  try {
    text = readFileSync(absolute, "utf8");
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message;
    throw new ConfigError([{ file: absolute, line: 0, key: "(file)", message: `cannot read config file: ${reason}` }]);
  }
  const { config, lineFor } = parse(text, absolute);
  if (options.requireTrusted) {
    const issues: ConfigIssue[] = [];
    for (const program of config.programs) {
      const owner = program.user === null ? null : resolveUser(program.user);
      // A worker's own user may own its files (it can change them anyway).
      const allowed = owner?.ok ? owner.ids.uid : null;
      const pathEnv = program.env.PATH ?? options.pathEnv ?? process.env.PATH ?? "/usr/bin:/bin";
      for (const f of programFiles(program.command, program.cwd, pathEnv)) {
        const why = untrustedBecause(f, allowed);
        if (why) {
          const where = ["programs", program.name, "command"];
          issues.push({ file: absolute, line: lineFor(where), key: where.join("."), message: `refusing a program others can change: ${why}` });
        }
      }
    }
    if (issues.length > 0) throw new ConfigError(issues);
  }
  return config;
}

export function parseConfig(text: string, file: string): Config {
  return parse(text, file).config;
}

function parse(text: string, file: string): { config: Config; lineFor: (where: Path) => number } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const lineAt = (offset: number) => lines.linePos(offset).line;
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => ({ file, line: lineAt(e.pos[0]), key: "(syntax)", message: e.message })));
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    // e.g. alias expansion beyond yaml's limit, which guards against "billion laughs".
    throw new ConfigError([{ file, line: 1, key: "(syntax)", message: (err as Error).message }]);
  }
  const result = configSchema.safeParse(data);
  if (!result.success) {
    throw new ConfigError(result.error.issues.flatMap((issue) => toIssues(issue, doc, lineAt, file)));
  }
  const order = programNamesInFileOrder(doc);
  const programs = [...result.data.programs].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  return {
    config: deepFreeze({ file: path.resolve(file), ...result.data, programs }),
    lineFor: (where) => lineOf(doc, where, "key", lineAt),
  };
}

type Path = readonly PropertyKey[];

function toIssues(issue: z.core.$ZodIssue, doc: Document, lineAt: (offset: number) => number, file: string): ConfigIssue[] {
  const at = (where: Path, mark: "key" | "value"): ConfigIssue => ({
    file,
    line: lineOf(doc, where, mark, lineAt),
    key: dotted(where),
    message: issue.message,
  });
  if (issue.code === "unrecognized_keys") return issue.keys.map((key) => at([...issue.path, key], "key"));
  return [at(issue.path, issue.code === "invalid_key" ? "key" : "value")];
}

function dotted(where: Path): string {
  const text = where.map((seg) => (typeof seg === "number" ? `[${seg}]` : `.${String(seg)}`)).join("");
  return text.replace(/^\./, "") || "(root)";
}

/**
 * The line to blame for a path: the key itself ("key"), or its value; a value
 * spanning several lines is blamed on its key, and a path that does not exist
 * (a missing key) on the deepest key that does.
 */
function lineOf(doc: Document, where: Path, mark: "key" | "value", lineAt: (offset: number) => number): number {
  let node: unknown = doc.contents;
  let line = isNode(node) && node.range ? lineAt(node.range[0]) : 1;
  for (const seg of where) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return line;
      line = isNode(pair.key) && pair.key.range ? lineAt(pair.key.range[0]) : line;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number" && node.items[seg] !== undefined) {
      node = node.items[seg];
      line = isNode(node) && node.range ? lineAt(node.range[0]) : line;
    } else {
      return line;
    }
  }
  if (mark === "key" || !isNode(node) || !node.range) return line;
  const blameKey = (isCollection(node) && !node.flow) || (isScalar(node) && node.source === "");
  return blameKey ? line : lineAt(node.range[0]);
}

/** JavaScript puts integer-like keys such as "10" first; Config promises the file's order. */
function programNamesInFileOrder(doc: Document): string[] {
  const programs = doc.get("programs");
  return isMap(programs) ? programs.items.map((p) => (isScalar(p.key) ? String(p.key.value) : "")) : [];
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
