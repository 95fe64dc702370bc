// The D-Bus API of vigild, defined once: names, member signatures with named
// arguments (so `busctl introspect` reads well), the error names, the wire
// form of a worker row and of the signals. Both sides use it:
// daemon/dbus/service.ts serves it, vigilctl calls it.
import { assertNever } from "../core/assert.js";
import type { ControlEvent, WorkerInfo } from "../control.js";

export const BUS_NAME = "org.vigil.Supervisor1";
export const OBJECT_PATH = "/org/vigil/Supervisor1";
export const INTERFACE = "org.vigil.Supervisor1";
/** Where the system bus policy lives; named in permission errors. */
export const POLICY_FILE = "/etc/dbus-1/system.d/org.vigil.Supervisor1.conf";

export const ERRORS = {
  unknownProgram: `${INTERFACE}.Error.UnknownProgram`,
  failed: `${INTERFACE}.Error.Failed`,
} as const;

export interface Arg {
  name: string;
  type: string;
}

export interface MethodSpec {
  in: Arg[];
  out: Arg[];
}

export interface PropertySpec {
  type: string;
  /**
   * org.freedesktop.DBus.Property.EmitsChangedSignal. "false" means a change
   * is not guaranteed to be signalled (vigild signals what it notices).
   */
  emitsChanged: "const" | "false";
}

const a = (name: string, type: string): Arg => ({ name, type });

/** ListWorkers() row: one struct per worker. */
export const WORKER_ROW = [
  a("program", "s"),
  a("worker", "u"),
  a("pid", "u"), // 0 = no process
  a("state", "s"),
  a("uptime_ms", "x"), // -1 = not running
  a("restarts", "u"),
  a("heartbeat_age_ms", "x"), // -1 = none seen / not heartbeat-checked
  a("status", "s"),
] as const;

export const WORKER_ROW_SIGNATURE = `(${WORKER_ROW.map((f) => f.type).join("")})`;

export const METHODS = {
  ListWorkers: { in: [], out: [a("workers", `a${WORKER_ROW_SIGNATURE}`)] },
  GetStatus: { in: [], out: [a("status_json", "s")] },
  RestartProgram: { in: [a("program", "s")], out: [] },
  Reload: { in: [], out: [a("ok", "b"), a("summary_or_errors", "s")] },
  GetLastShutdown: { in: [], out: [a("report_json", "s")] },
} as const satisfies Record<string, MethodSpec>;

export const SIGNALS = {
  WorkerHung: [a("program", "s"), a("worker", "u"), a("pid", "u"), a("phase", "s"), a("after_ms", "t")],
  WorkerExited: [
    a("program", "s"),
    a("worker", "u"),
    a("pid", "u"),
    a("code", "i"), // -1 = none (killed by a signal)
    a("signal", "s"), // "" = none
    a("outcome", "s"), // "" = not a requested stop
  ],
} as const satisfies Record<string, readonly Arg[]>;

export const PROPERTIES = {
  State: { type: "s", emitsChanged: "false" },
  Version: { type: "s", emitsChanged: "const" },
  StatusText: { type: "s", emitsChanged: "false" },
  Workers: { type: "u", emitsChanged: "false" },
} as const satisfies Record<string, PropertySpec>;

export type MethodName = keyof typeof METHODS;
export type SignalName = keyof typeof SIGNALS;
export type PropertyName = keyof typeof PROPERTIES;

export function signatureOf(args: readonly Arg[]): string {
  return args.map((x) => x.type).join("");
}

/** The wire form of one worker, in WORKER_ROW order. */
export type WorkerRow = [string, number, number, string, number, number, number, string];

/** Whole milliseconds, never negative: 64-bit integers on the wire must be integers. */
function ms(value: number): number {
  return Math.max(0, Math.round(value));
}

export function workerToRow(w: WorkerInfo): WorkerRow {
  return [
    w.program,
    w.worker,
    w.pid ?? 0,
    w.state,
    w.uptimeMs === null ? -1 : ms(w.uptimeMs),
    w.restarts,
    w.lastHeartbeatAgeMs === null ? -1 : ms(w.lastHeartbeatAgeMs),
    w.status ?? "",
  ];
}

/** A worker as read back from a ListWorkers() row (64-bit values arrive as bigint). */
export interface WorkerRowInfo {
  program: string;
  worker: number;
  pid: number | null;
  state: string;
  uptimeMs: number | null;
  restarts: number;
  lastHeartbeatAgeMs: number | null;
  status: string | null;
}

export function rowToWorker(row: readonly unknown[]): WorkerRowInfo {
  const num = (v: unknown): number => (typeof v === "bigint" ? Number(v) : Number(v));
  const optional = (v: unknown): number | null => (num(v) < 0 ? null : num(v));
  return {
    program: String(row[0]),
    worker: num(row[1]),
    pid: num(row[2]) === 0 ? null : num(row[2]),
    state: String(row[3]),
    uptimeMs: optional(row[4]),
    restarts: num(row[5]),
    lastHeartbeatAgeMs: optional(row[6]),
    status: row[7] === "" ? null : String(row[7]),
  };
}

export type WorkerHungArgs = [string, number, number, string, number];
export type WorkerExitedArgs = [string, number, number, number, string, string];

export type SignalArgs =
  | { name: "WorkerHung"; args: WorkerHungArgs }
  | { name: "WorkerExited"; args: WorkerExitedArgs };

/** The signal a control event becomes. */
export function eventToSignal(event: ControlEvent): SignalArgs {
  switch (event.type) {
    case "worker-hung":
      return {
        name: "WorkerHung",
        args: [event.program, event.worker, event.pid ?? 0, event.phase, ms(event.afterMs)],
      };
    case "worker-exited":
      return {
        name: "WorkerExited",
        args: [
          event.program,
          event.worker,
          event.pid ?? 0,
          event.code ?? -1,
          event.signal ?? "",
          event.outcome ?? "",
        ],
      };
    default:
      return assertNever(event, "control event");
  }
}
