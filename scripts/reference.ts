// Reads docs/configuration.md, the reference of vigil.yaml: one section per
// key, headed by the key in backquotes ("### `programs.NAME.command`"). Used
// by the build (each key's text becomes its description in the JSON Schema,
// which editors show on hover) and by the test that holds the reference to
// the schema.
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface ReferenceSection {
  /** "metrics.listen", "programs.NAME.shutdown.timeout". */
  key: string;
  /** Everything up to the next heading, without the heading. */
  body: string;
}

export function referenceFile(repo: string): string {
  return join(repo, "docs/configuration.md");
}

export function referenceSections(text: string): ReferenceSection[] {
  const headings = [...text.matchAll(/^#{2,4} (.*)$/gm)];
  return headings.flatMap((h, i) => {
    const key = /^`([^`]+)`$/.exec(h[1]!.trim())?.[1];
    if (key === undefined) return [];
    const end = headings[i + 1]?.index ?? text.length;
    return [{ key, body: text.slice(h.index! + h[0].length, end).trim() }];
  });
}

/** The reference's text for each key, as markdown, for editors. */
export function keyDescriptions(repo: string): Map<string, string> {
  const sections = referenceSections(readFileSync(referenceFile(repo), "utf8"));
  return new Map(sections.map((s) => [s.key, s.body]));
}
