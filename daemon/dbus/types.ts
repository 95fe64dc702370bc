// The D-Bus API of vigild, defined once: names, member signatures with named
// arguments (so `busctl introspect` reads well), the error names, the wire
// form of a worker row and of the signals, and how a bus address is found.
// Both sides use it: daemon/dbus/service.ts serves it, vigilctl calls it.
import dbus from "dbus-next";
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

export type BusKind = "system" | "session";

/** The D-Bus spec's default system bus address. */
export const DEFAULT_SYSTEM_BUS_ADDRESS = "unix:path=/var/run/dbus/system_bus_socket";

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
  }
}

export type AddressResult = { ok: true; address: string } | { ok: false; error: string };

/**
 * The address of a bus, as libdbus finds it: an explicit one first, then
 * DBUS_SYSTEM_BUS_ADDRESS / DBUS_SESSION_BUS_ADDRESS. The system bus falls
 * back to the well-known socket; a session bus has no default here (no X11
 * autolaunch for a daemon or a CLI).
 */
export function resolveBusAddress(
  bus: BusKind,
  explicit: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): AddressResult {
  if (explicit) return { ok: true, address: explicit };
  if (bus === "system") return { ok: true, address: env.DBUS_SYSTEM_BUS_ADDRESS || DEFAULT_SYSTEM_BUS_ADDRESS };
  const session = env.DBUS_SESSION_BUS_ADDRESS;
  if (session) return { ok: true, address: session };
  return { ok: false, error: "DBUS_SESSION_BUS_ADDRESS is not set" };
}

export class BusConnectError extends Error {
  constructor(
    readonly bus: BusKind,
    readonly address: string,
    readonly detail: string,
  ) {
    super(`cannot connect to the ${bus} bus at ${address}: ${detail}`);
    this.name = "BusConnectError";
  }
}

const ERRNO: Record<string, string> = {
  ENOENT: "no such socket",
  ECONNREFUSED: "connection refused",
  EACCES: "permission denied",
  ECONNRESET: "connection reset",
  ETIMEDOUT: "timed out",
};

/** A failed connect, readable: usocket's messages name its C++ source line. */
function describeConnectError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return `${ERRNO[code] ?? "connect failed"} (${code})`;
  return describe(err);
}

function describe(err: unknown): string {
  if (err instanceof dbus.DBusError) return `${err.type}: ${err.text}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Connect to a bus and wait for the bus to accept us (the Hello reply).
 * dbus-next reports a failed connect only as an `error` event, and a bus
 * that closes the socket during the handshake not at all, hence the bound.
 * Rejects with BusConnectError. The returned bus keeps a listener on
 * `error`, so a later error never crashes the process; callers add their own.
 */
export async function connectBus(bus: BusKind, address: string, timeoutMs = 10_000): Promise<dbus.MessageBus> {
  let conn: dbus.MessageBus;
  try {
    conn = dbus.sessionBus({ busAddress: address });
  } catch (err) {
    // dbus-next parses the address synchronously and throws on a malformed one.
    throw new BusConnectError(bus, address, `not a valid D-Bus address (${describe(err)})`);
  }
  conn.on("error", () => {
    // Kept for the lifetime of the connection: an `error` without a listener would throw.
  });
  let timer: NodeJS.Timeout | undefined;
  let onError: ((err: unknown) => void) | undefined;
  let onConnect: (() => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      onConnect = resolve;
      onError = (err: unknown) => reject(new BusConnectError(bus, address, describeConnectError(err)));
      conn.on("connect", onConnect);
      conn.on("error", onError);
      timer = setTimeout(
        () => reject(new BusConnectError(bus, address, `no answer from the bus within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
  } catch (err) {
    conn.disconnect();
    throw err;
  } finally {
    clearTimeout(timer);
    if (onConnect) conn.removeListener("connect", onConnect);
    if (onError) conn.removeListener("error", onError);
  }
  return conn;
}

export { describe as describeDbusError };

/**
 * Call `listener` once when the bus closes our connection (the dbus-daemon
 * stopped or restarted). dbus-next 0.10 does not forward the socket's end
 * to MessageBus: it only fails the next send, and calls in flight are never
 * answered. Its connection object is internal, hence the narrow cast.
 */
export function onConnectionClosed(bus: dbus.MessageBus, listener: () => void): void {
  const connection = (bus as unknown as { _connection?: NodeJS.EventEmitter })._connection;
  connection?.once("end", listener);
}
