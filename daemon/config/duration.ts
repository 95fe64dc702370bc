// Durations, sizes and restart limits as written in vigil.yaml, and back.
// Each parser throws an Error whose message completes "KEY: ..." so the config
// loader can use it verbatim and a CLI can prefix it with the argument name.
import { describeValue } from "./errors.js";

const DURATION_UNITS_MS = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
type DurationUnit = keyof typeof DURATION_UNITS_MS;

const SIZE_UNITS = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
} as const;

/** setTimeout fires at once for longer delays, so nothing may be configured beyond this. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

const DURATION_EXAMPLES = `"250ms", "5s", "1.5s", "2m", "1h" or "1h30m"`;
const SIZE_EXAMPLES = `"512MiB", "1GiB", "100KiB", "512MB" or "1000" (bytes)`;

const NUMBER = String.raw`\d+(?:\.\d+)?`;
/** A duration with a unit as parseDuration reads it, as a regular expression without anchors (for the JSON Schema). */
const DURATION_WITH_UNIT = `(?=\\d)(?:${NUMBER}h)?(?:${NUMBER}m(?!s))?(?:${NUMBER}s)?(?:${NUMBER}ms)?`;
/** What parseDuration accepts as a string (its upper bound, MAX_DURATION_MS, aside). */
export const DURATION_PATTERN = `^(?:0|${DURATION_WITH_UNIT})$`;
/** What parseSize accepts as a string. */
export const SIZE_PATTERN = String.raw`^\d+(?:\.\d+)? ?(?:[KkMmGgTt][Ii]?[Bb]|[Bb])?$`;
/** What parseRestartLimit accepts (a window of "0s" aside). */
export const RESTART_LIMIT_PATTERN = String.raw`^\s*0*[1-9]\d* in ${DURATION_WITH_UNIT}\s*$`;

/** "250ms", "1.5s", "1h30m" (units largest first, each once) or 0 -> milliseconds. */
export function parseDuration(value: unknown): number {
  if (value === 0 || value === "0") return 0;
  if (typeof value === "number") {
    throw new Error(`must be a duration string with a unit, e.g. "${value}s", got the bare number ${value}`);
  }
  const ms = typeof value === "string" ? sumDurationParts(value) : undefined;
  if (ms === undefined) throw new Error(`must be a duration such as ${DURATION_EXAMPLES}, got ${describeValue(value)}`);
  if (ms > MAX_DURATION_MS) throw new Error(`must be at most ${formatDuration(MAX_DURATION_MS)}, got ${describeValue(value)}`);
  return ms;
}

function sumDurationParts(text: string): number | undefined {
  const units = Object.keys(DURATION_UNITS_MS) as DurationUnit[];
  const part = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;
  let total = 0;
  let lastUnit = -1;
  while (part.lastIndex < text.length) {
    const match = part.exec(text);
    if (!match) return undefined;
    const unit = units.indexOf(match[2] as DurationUnit);
    // Order is enforced so that "1s2h" or "5s5s" cannot hide a typo.
    if (unit <= lastUnit) return undefined;
    lastUnit = unit;
    total += Number(match[1]) * DURATION_UNITS_MS[units[unit]!];
  }
  return lastUnit < 0 ? undefined : Math.round(total);
}

/** The inverse of parseDuration for log messages: 1500 -> "1.5s", 5_400_000 -> "1h30m". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  const rounded = Math.round(ms);
  if (rounded === 0) return "0";
  if (rounded < 1000) return `${rounded}ms`;
  const hours = Math.floor(rounded / 3_600_000);
  const minutes = Math.floor((rounded % 3_600_000) / 60_000);
  const seconds = (rounded % 60_000) / 1000;
  return [hours && `${hours}h`, minutes && `${minutes}m`, seconds && `${seconds}s`].filter(Boolean).join("");
}

/** "512MiB", "1GiB", "512MB", "1000" or a bare integer -> bytes. */
export function parseSize(value: unknown): number {
  // Bytes are the only sensible unit for a bare number, unlike durations.
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  const match = typeof value === "string" ? /^(\d+(?:\.\d+)?) ?([a-z]*)$/i.exec(value) : null;
  const unit = match ? (match[2] || "b").toLowerCase() : "";
  if (!match || !(unit in SIZE_UNITS)) {
    throw new Error(`must be a size such as ${SIZE_EXAMPLES}, got ${describeValue(value)}`);
  }
  const bytes = Math.round(Number(match[1]) * SIZE_UNITS[unit as keyof typeof SIZE_UNITS]);
  if (!Number.isSafeInteger(bytes)) throw new Error(`is too large, got ${describeValue(value)}`);
  return bytes;
}

export interface RestartLimit {
  count: number;
  windowMs: number;
}

/** "10 in 60s" -> at most 10 unrequested restarts in any 60 s window. */
export function parseRestartLimit(value: unknown): RestartLimit {
  const match = typeof value === "string" ? /^(\d+) in (\S+)$/.exec(value.trim()) : null;
  const count = match ? Number(match[1]) : 0;
  const windowMs = match ? durationOrZero(match[2]!) : 0;
  if (!match || count < 1 || windowMs <= 0) {
    throw new Error(`must be "COUNT in DURATION" with COUNT >= 1 and DURATION > 0, e.g. "10 in 60s", got ${describeValue(value)}`);
  }
  return { count, windowMs };
}

function durationOrZero(text: string): number {
  try {
    return parseDuration(text);
  } catch {
    return 0;
  }
}
