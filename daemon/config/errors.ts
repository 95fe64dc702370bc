export interface ConfigIssue {
  file: string;
  /** 1-based; 0 when the file itself could not be read. */
  line: number;
  /** Dotted path of the offending key, or "(syntax)" / "(file)". */
  key: string;
  message: string;
}

/** How a rejected value appears after "got" in messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (value !== null && typeof value === "object") return "a mapping";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint" || value === null) {
    return String(value);
  }
  return `a ${typeof value}`;
}

export function formatIssue(issue: ConfigIssue): string {
  return `${issue.file}:${issue.line}: ${issue.key}: ${issue.message}`;
}

/** Every problem in one config file, so an operator can fix them in one pass. */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    // Stable sort: issues on one line keep the order the validator found them in.
    const sorted = [...issues].sort((a, b) => a.line - b.line);
    super(sorted.map(formatIssue).join("\n"));
    this.name = "ConfigError";
    this.issues = sorted;
  }
}
