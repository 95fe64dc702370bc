// Finding and connecting to a D-Bus bus (system or session), with errors a
// person can act on. Used by vigild's service, vigilctl and the check of
// vigild's own systemd unit.
import dbus from "dbus-next";

export type BusKind = "system" | "session";

/** The D-Bus spec's default system bus address. */
export const DEFAULT_SYSTEM_BUS_ADDRESS = "unix:path=/var/run/dbus/system_bus_socket";

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
