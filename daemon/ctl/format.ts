// What vigilctl prints, as pure functions of what vigild answered: no I/O,
// no clock. Table tests in test/unit/ctl/format.test.ts pin them. Colour is
// a Style passed in (PLAIN unless vigilctl writes to a terminal); it is
// applied after the columns are padded, so tables stay aligned either way.
import type { ProgramInfo, StatusSnapshot, WorkerInfo } from "../control.js";
import type { LastShutdownReport, WorkerShutdownRecord } from "../shutdown/report.js";
import type { ColorMode } from "./args.js";

export const NONE = "-";

export type Paint = (text: string) => string;

export interface Style {
  header: Paint;
  good: Paint;
  warn: Paint;
  bad: Paint;
}

const same: Paint = (text) => text;
const sgr =
  (on: string): Paint =>
  (text) =>
    text === "" ? text : `\x1b[${on}m${text}\x1b[0m`;

export const PLAIN: Style = { header: same, good: same, warn: same, bad: same };
export const COLOR: Style = { header: sgr("1"), good: sgr("32"), warn: sgr("33"), bad: sgr("1;31") };

/**
 * Whether to colour: --color always/never decide; auto colours a terminal
 * only, and not when NO_COLOR is set to anything (no-color.org) or TERM is
 * dumb.
 */
export function useColor(mode: ColorMode, isTTY: boolean, env: Readonly<Record<string, string | undefined>>): boolean {
  if (mode !== "auto") return mode === "always";
  if (!isTTY) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  return env.TERM !== "dumb";
}

/** Text without the colour codes of COLOR, as a pipe would get it. */
export function stripColor(text: string): string {
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

/** How each worker state and stop outcome is shown: fine, worth a look, or wrong. */
function severity(value: string): keyof Omit<Style, "header"> | null {
  switch (value) {
    case "running":
    case "clean":
      return "good";
    case "starting":
    case "stopping":
    case "stopped":
    case "reloading":
    case "backoff":
    case "skipped":
      return "warn";
    case "hung":
    case "killing":
    case "failed":
    case "FAILED":
    case "forced":
    case "forcing":
    case "unkillable":
      return "bad";
    default:
      return null;
  }
}

function paintValue(style: Style, value: string): string {
  const level = severity(value);
  return level === null ? value : style[level](value);
}

/**
 * A duration for people: 850ms, 2.5s, 42s, 3m12s, 2h05m, 3d4h. Precise
 * below ten seconds (shutdown phases live there), coarser above.
 */
export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return NONE;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 10_000) {
    // Floor, as a clock shows time: the text never runs ahead of the value.
    const tenths = Math.floor(ms / 100) / 10;
    return Number.isInteger(tenths) ? `${tenths}s` : `${tenths.toFixed(1)}s`;
  }
  const totalSeconds = Math.floor(ms / 1000);
  if (totalSeconds < 60) return `${totalSeconds}s`;
  const totalMinutes = Math.floor(totalSeconds / 60);
  if (totalMinutes < 60) return `${totalMinutes}m${totalSeconds % 60}s`;
  const totalHours = Math.floor(totalMinutes / 60);
  if (totalHours < 24) return `${totalHours}h${String(totalMinutes % 60).padStart(2, "0")}m`;
  return `${Math.floor(totalHours / 24)}d${totalHours % 24}h`;
}

/**
 * A measured duration, to the millisecond below a minute: 35ms, 4.955s,
 * 5.01s; then as formatDuration. For the phases of a shutdown.
 */
export function formatPreciseDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return NONE;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(Math.round(ms) / 1000).toFixed(3).replace(/\.?0+$/, "")}s`;
  return formatDuration(ms);
}

/** One line of free text (a worker's status) that cannot break the table. */
export function oneLine(text: string | null): string {
  if (text === null) return NONE;
  const clean = text.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return clean === "" ? NONE : clean;
}

/**
 * Left-aligned columns, two spaces apart, no trailing blanks. `paint` colours
 * a cell by its column and text; widths are measured on the text itself.
 */
export function formatTable(
  headers: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  style: Style = PLAIN,
  paint: (column: number, text: string) => string = (_, text) => text,
): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  // Padding is added outside the colour codes, and Paint leaves "" alone, so
  // trailing blanks are still trimmed.
  const line = (cells: readonly string[], colour: (i: number, text: string) => string): string =>
    cells
      .map((c, i) => colour(i, c) + (i === cells.length - 1 ? "" : " ".repeat(widths[i]! - c.length)))
      .join("  ")
      .trimEnd();
  return [line(headers, (_, t) => style.header(t)), ...rows.map((r) => line(r, paint))].join("\n");
}

function programState(p: ProgramInfo): string {
  return p.state === "failed" ? "FAILED" : p.state;
}

function teardown(p: ProgramInfo): string {
  return p.teardownSetting === "auto" ? `${p.teardown} (auto)` : p.teardown;
}

function restartCounts(counts: ProgramInfo["restarts"]): string {
  const parts = Object.entries(counts)
    .filter(([, n]) => n !== undefined && n > 0)
    .map(([reason, n]) => `${reason}=${n}`);
  return parts.length === 0 ? NONE : parts.join(",");
}

export const PROGRAM_HEADERS = ["PROGRAM", "STATE", "READY", "TEARDOWN", "RESTARTS"] as const;
export const WORKER_HEADERS = ["PROGRAM", "WORKER", "STATE", "PID", "UPTIME", "RESTARTS", "HEARTBEAT", "STATUS"] as const;

export function programRow(p: ProgramInfo): string[] {
  return [p.name, programState(p), `${p.ready}/${p.instances}`, teardown(p), restartCounts(p.restarts)];
}

export function workerRow(w: WorkerInfo): string[] {
  return [
    w.program,
    String(w.worker),
    w.state,
    w.pid === null ? NONE : String(w.pid),
    formatDuration(w.uptimeMs),
    String(w.restarts),
    formatDuration(w.lastHeartbeatAgeMs),
    oneLine(w.status),
  ];
}

/** `vigilctl status`: vigild's state and status line, the programs, then every worker. */
export function formatStatus(s: StatusSnapshot, style: Style = PLAIN): string {
  const out = [`vigild ${s.version}, pid ${s.pid}, ${s.configFile}: ${paintValue(style, s.state)}`, `status: ${oneLine(s.statusText)}`];
  out.push("");
  // The STATE columns: program state (1) and worker state (2).
  const programs = formatTable(PROGRAM_HEADERS, s.programs.map(programRow), style, (i, t) => (i === 1 ? paintValue(style, t) : t));
  out.push(s.programs.length === 0 ? "no programs" : programs);
  out.push("");
  const workers = formatTable(WORKER_HEADERS, s.workers.map(workerRow), style, (i, t) => (i === 2 ? paintValue(style, t) : t));
  out.push(s.workers.length === 0 ? "no workers" : workers);
  return out.join("\n") + "\n";
}

export const SHUTDOWN_HEADERS = ["PROGRAM/WORKER", "OUTCOME", "HANG", "HANDLERS", "TEARDOWN", "TOTAL", "EXIT"] as const;

function teardownCell(r: WorkerShutdownRecord): string {
  if (r.teardown_ms !== null) return formatPreciseDuration(r.teardown_ms);
  return r.teardown === "skip" && r.handlers_done_ms !== null ? "skipped" : NONE;
}

function exitCell(r: WorkerShutdownRecord): string {
  // vigild stopped waiting for it: there was no exit to show.
  if (r.outcome === "unkillable") return "still there";
  if (r.exit_signal !== null) return r.exit_signal;
  return r.exit_code === null ? NONE : String(r.exit_code);
}

export function shutdownRow(r: WorkerShutdownRecord): string[] {
  return [
    `${r.program}/${r.worker}`,
    r.outcome,
    r.hang ?? NONE,
    formatPreciseDuration(r.handlers_ms),
    teardownCell(r),
    formatPreciseDuration(r.exited_ms),
    exitCell(r),
  ];
}

/** `vigilctl last-shutdown`: the summary, when, then one row per worker. */
export function formatLastShutdown(report: LastShutdownReport | null, style: Style = PLAIN): string {
  if (report === null) return "no previous shutdown recorded\n";
  const out = [oneLine(report.summary)];
  const forced = report.forced_by_signal ? ", forced by a second signal" : "";
  out.push(`started ${report.started_at}, ended ${report.ended_at} (${formatPreciseDuration(report.duration_ms)}${forced})`);
  out.push(`vigild pid ${report.vigild_pid}`);
  if (report.teardown_switched.length > 0) {
    out.push(`teardown switched to skip (auto): ${report.teardown_switched.join(", ")}`);
  }
  out.push("");
  // OUTCOME (1) by severity; a HANG (2) is always worth a look.
  const table = formatTable(SHUTDOWN_HEADERS, report.workers.map(shutdownRow), style, (i, t) =>
    i === 1 ? paintValue(style, t) : i === 2 && t !== NONE ? style.bad(t) : t,
  );
  out.push(report.workers.length === 0 ? "no workers were running" : table);
  return out.join("\n") + "\n";
}

/** `vigilctl reload` when vigild refused the new configuration. */
export function formatReloadFailure(errors: string): string {
  return `reload failed; vigild keeps the previous configuration:\n${errors}\n`;
}
