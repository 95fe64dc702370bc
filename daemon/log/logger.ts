// vigild's log: one line per event, in the form its reader understands.
// Under journald (JOURNAL_STREAM set) each line starts with a syslog priority
// prefix ("<4>"), which journald strips and records as PRIORITY, so
// `journalctl -p warning` filters correctly (sd-daemon(3)).
import winston from "winston";
import type { LogFormat, LogLevel } from "../config/types.js";
import type { Fields, OutputEntry } from "../core/log-entry.js";

export type { Fields, OutputEntry };

export interface Logger {
  error(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  debug(message: string, fields?: Fields): void;
  setLevel(level: LogLevel): void;
  /**
   * Lines of a worker's output, each at its syslog priority, written in one
   * write straight to the log's stream (not through winston's queue) so that
   * `taken` runs when the stream's reader has them: the worker's output
   * budget counts on that.
   */
  output(lines: readonly OutputEntry[], taken: () => void): void;
}

// winston's transports write info[Symbol.for("message")] (triple-beam's MESSAGE).
const MESSAGE = Symbol.for("message");

const PRIORITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };
const LEVELS: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** The level a syslog priority (0 emerg .. 7 debug) is shown and filtered at. */
export function levelOfPriority(priority: number): LogLevel {
  if (priority <= 3) return "error";
  if (priority === 4) return "warn";
  if (priority <= 6) return "info";
  return "debug";
}

export type ResolvedFormat = Exclude<LogFormat, "auto">;

export function resolveFormat(format: LogFormat, env: NodeJS.ProcessEnv = process.env): ResolvedFormat {
  if (format !== "auto") return format;
  return env.JOURNAL_STREAM ? "journal" : "text";
}

interface Entry {
  level: string;
  message: string;
  fields: Fields;
}

function fieldText(fields: Fields): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    const text = String(value);
    parts.push(`${key}=${/[\s"=]/.test(text) || text === "" ? JSON.stringify(text) : text}`);
  }
  return parts.length > 0 ? ` ${parts.join(" ")}` : "";
}

type FieldsKind = "json" | "text";

/** The fields as a line's tail: JSON members after msg, or ` key=value` pairs. */
function renderFields(kind: FieldsKind, fields: Fields): string {
  if (kind === "text") return fieldText(fields);
  const members = JSON.stringify(fields).slice(1, -1);
  return members === "" ? "" : `,${members}`;
}

/**
 * The rendered fields of a worker's output, by the fields object: a worker
 * hands the same object for every line of a stream, and a flood of lines
 * must not render them again for each one.
 */
const renderedFields = { json: new WeakMap<Fields, string>(), text: new WeakMap<Fields, string>() };

function cachedFields(kind: FieldsKind, fields: Fields): string {
  let rendered = renderedFields[kind].get(fields);
  if (rendered === undefined) {
    rendered = renderFields(kind, fields);
    renderedFields[kind].set(fields, rendered);
  }
  return rendered;
}

/** One log line; `fieldsOf` renders the fields (cachedFields for a worker's output). */
function render(
  format: ResolvedFormat,
  time: string,
  level: string,
  priority: number,
  message: string,
  fields: Fields,
  fieldsOf: (kind: FieldsKind, fields: Fields) => string = renderFields,
): string {
  switch (format) {
    case "journal":
      return `<${priority}>${message}${fieldsOf("text", fields)}`;
    case "json":
      return `{"time":"${time}","level":"${level}","msg":${JSON.stringify(message)}${fieldsOf("json", fields)}}`;
    case "text":
      return `${time} ${level.toUpperCase().padEnd(5)} ${message}${fieldsOf("text", fields)}`;
  }
}

export function createLogger(options: { level: LogLevel; format: LogFormat; stream?: NodeJS.WritableStream }): Logger {
  const format = resolveFormat(options.format);
  const line = winston.format((info) => {
    const { level, message, fields } = info as unknown as Entry;
    const priority = PRIORITY[level as LogLevel] ?? 6;
    (info as Record<string | symbol, unknown>)[MESSAGE] = render(format, new Date().toISOString(), level, priority, String(message), fields ?? {});
    return info;
  });
  const stream = options.stream ?? process.stdout;
  const logger = winston.createLogger({
    levels: LEVELS,
    level: options.level,
    format: line(),
    transports: [new winston.transports.Stream({ stream })],
  });
  const log = (level: LogLevel) => (message: string, fields: Fields = {}) => {
    logger.log({ level, message, fields });
  };
  return {
    error: log("error"),
    warn: log("warn"),
    info: log("info"),
    debug: log("debug"),
    setLevel: (level) => {
      logger.level = level;
    },
    output: (lines, taken) => {
      // The lines of one read were read at one moment: one timestamp for all.
      const time = new Date().toISOString();
      const max = LEVELS[logger.level as LogLevel];
      let text = "";
      for (const { priority, message, fields } of lines) {
        const level = levelOfPriority(priority);
        if (LEVELS[level] <= max) text += `${render(format, time, level, priority, message, fields, cachedFields)}\n`;
      }
      if (text === "") return taken();
      stream.write(text, () => taken());
    },
  };
}
