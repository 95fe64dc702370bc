// The last-shutdown report on disk: written atomically (temporary file,
// fsync, rename, fsync of the directory) so a crash mid-write leaves the
// previous report or the new one, never half of one. A marker file records
// that a stop began; if it is still there at the next start, that stop never
// finished (vigild was SIGKILLed or the host went down).
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import path, { join } from "node:path";
import { REPORT_FILE, REPORT_VERSION, type LastShutdownReport } from "./report.js";

export const STOP_MARKER = "stop-in-progress";

export type LoadedReport =
  | { kind: "none" }
  | { kind: "ok"; report: LastShutdownReport }
  | { kind: "bad"; error: string };

/**
 * mkdir -p, one component at a time. Node's recursive mkdirSync loops forever
 * when a directory cannot be made under a parent that exists (ENOENT under
 * /proc, as seen on Node 20); this one fails instead.
 */
export function ensureDir(dir: string): void {
  const parts = path.resolve(dir).split(path.sep).filter(Boolean);
  let current: string = path.sep;
  for (const part of parts) {
    current = path.join(current, part);
    try {
      mkdirSync(current, { mode: 0o755 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}

function writeAtomically(dir: string, name: string, text: string): void {
  ensureDir(dir);
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  const fd = openSync(tmp, "w", 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, name));
  const dirFd = openSync(dir, "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

export function saveReport(dir: string, report: LastShutdownReport): void {
  writeAtomically(dir, REPORT_FILE, `${JSON.stringify(report, null, 2)}\n`);
}

export function loadReport(dir: string): LoadedReport {
  let text: string;
  try {
    text = readFileSync(join(dir, REPORT_FILE), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "none" };
    return { kind: "bad", error: (err as Error).message };
  }
  try {
    const value = JSON.parse(text) as Partial<LastShutdownReport>;
    if (value.version !== REPORT_VERSION || !Array.isArray(value.workers) || typeof value.duration_ms !== "number") {
      return { kind: "bad", error: "not a version 1 report" };
    }
    return { kind: "ok", report: value as LastShutdownReport };
  } catch (err) {
    return { kind: "bad", error: `not JSON: ${(err as Error).message}` };
  }
}

export function markStopBegun(dir: string, startedAt: string): void {
  writeAtomically(dir, STOP_MARKER, `${JSON.stringify({ pid: process.pid, started_at: startedAt })}\n`);
}

export function clearStopMarker(dir: string): void {
  rmSync(join(dir, STOP_MARKER), { force: true });
}

/** The marker of a stop that never finished, if any. */
export function unfinishedStop(dir: string): { pid: number; started_at: string } | null {
  try {
    return JSON.parse(readFileSync(join(dir, STOP_MARKER), "utf8")) as { pid: number; started_at: string };
  } catch {
    return null;
  }
}
