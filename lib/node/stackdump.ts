// The SIGUSR2 stack dump of the Node client: the JavaScript stack where the
// handler runs, the active libuv handles, and what keeps the loop alive.

import { fileURLToPath } from "node:url";
import { STACK_DUMP_SIGNAL } from "../protocol/index.js";
import { CLIENT_DIR_URL } from "./here.js";

/**
 * The client's own modules: their frames (the signal handler, this file) say
 * nothing. Frames name ES modules by URL and CommonJS ones by path.
 */
const CLIENT_DIRS = [CLIENT_DIR_URL.href, fileURLToPath(CLIENT_DIR_URL)];

interface ReportHandle {
  type?: unknown;
  is_active?: unknown;
  is_referenced?: unknown;
  fd?: unknown;
  repeat?: unknown;
  firesInMsFromNow?: unknown;
  signum?: unknown;
  localEndpoint?: unknown;
  remoteEndpoint?: unknown;
  filename?: unknown;
  loopIdleTimeSeconds?: unknown;
}

interface ReportShape {
  javascriptStack?: { message?: unknown; stack?: unknown };
  libuv?: unknown;
}

/** libuv handles Node itself always keeps; they say nothing about the app. */
const INTERNAL_HANDLE_TYPES = new Set(["async", "check", "prepare", "idle"]);

function describeEndpoint(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const e = value as Record<string, unknown>;
  const host = typeof e.ip4 === "string" ? e.ip4 : typeof e.ip6 === "string" ? `[${e.ip6}]` : e.host;
  return `${String(host)}:${String(e.port)}`;
}

function describeHandle(h: ReportHandle): string | undefined {
  const type = typeof h.type === "string" ? h.type : "?";
  if (INTERNAL_HANDLE_TYPES.has(type)) return undefined;
  if (type === "loop") {
    return typeof h.loopIdleTimeSeconds === "number" ? `loop idle ${h.loopIdleTimeSeconds.toFixed(3)} s in total` : undefined;
  }
  if (h.is_active !== true) return undefined;
  const parts = [type, h.is_referenced === true ? "ref" : "unref"];
  if (typeof h.fd === "number" && h.fd >= 0) parts.push(`fd=${h.fd}`);
  if (type === "timer") {
    if (typeof h.repeat === "number") parts.push(`repeat=${h.repeat}`);
    if (typeof h.firesInMsFromNow === "number") parts.push(`fires_in=${h.firesInMsFromNow}ms`);
  }
  if (typeof h.signum === "number") parts.push(`signum=${h.signum}`);
  const local = describeEndpoint(h.localEndpoint);
  if (local !== undefined) parts.push(`local=${local}`);
  const remote = describeEndpoint(h.remoteEndpoint);
  if (remote !== undefined) parts.push(`remote=${remote}`);
  if (typeof h.filename === "string") parts.push(`file=${h.filename}`);
  return parts.join(" ");
}

/**
 * The SIGUSR2 dump: the JavaScript stack at the point the handler runs, the
 * active libuv handles and Node's active resources (what keeps the loop
 * alive, what it is waiting for). A handler runs only when the loop is not
 * blocked; a blocked loop is the watchdog's job.
 */
export function formatStackDump(): string {
  const lines: string[] = [];
  const reportApi = process.report as typeof process.report & { excludeNetwork?: boolean };
  const excludeNetwork = reportApi.excludeNetwork;
  try {
    // No reverse DNS of socket endpoints while taking the report.
    if (excludeNetwork !== undefined) reportApi.excludeNetwork = true;
    const report = reportApi.getReport() as ReportShape;
    const js = report.javascriptStack;
    lines.push("javascript stack:");
    const stack = js !== undefined && Array.isArray(js.stack) ? js.stack : [];
    const frames = stack.filter(
      (f): f is string => typeof f === "string" && !CLIENT_DIRS.some((dir) => f.includes(dir)) && !f.includes("node:internal/process/report"),
    );
    for (const frame of frames) lines.push(`  ${frame.trim()}`);
    if (frames.length === 0) lines.push("  (none below the signal handler: the event loop was idle, waiting)");
    lines.push("libuv handles (active):");
    const handles = Array.isArray(report.libuv) ? (report.libuv as unknown[]) : [];
    for (const handle of handles) {
      if (typeof handle !== "object" || handle === null) continue;
      const line = describeHandle(handle as ReportHandle);
      if (line !== undefined) lines.push(`  ${line}`);
    }
  } catch (err) {
    lines.push(`diagnostic report failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    if (excludeNetwork !== undefined) reportApi.excludeNetwork = excludeNetwork;
  }
  const counts = new Map<string, number>();
  for (const name of process.getActiveResourcesInfo()) counts.set(name, (counts.get(name) ?? 0) + 1);
  const resources = [...counts].map(([name, n]) => (n > 1 ? `${name} x${n}` : name)).join(", ");
  lines.push(`keeping the process alive: ${resources === "" ? "nothing" : resources}`);
  return `vigil: stack dump (${STACK_DUMP_SIGNAL}) pid=${process.pid}\n${lines.map((l) => `  ${l}\n`).join("")}`;
}

