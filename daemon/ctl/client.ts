// vigilctl's side of the D-Bus API (./../dbus/types.ts): plain method calls
// with explicit signatures, no introspection round trip, and every failure
// turned into a message and an exit status by classifyError().
import dbus from "dbus-next";
import type { StatusSnapshot } from "../control.js";
import type { LastShutdownReport } from "../shutdown/report.js";
import { BUS_NAME, ERRORS, INTERFACE, METHODS, OBJECT_PATH, POLICY_FILE, signatureOf, type MethodName } from "../dbus/contract.js";
import { BusConnectError, connectBus, onConnectionClosed, resolveBusAddress, type BusKind } from "../dbus/connect.js";
import { CTL_EXIT } from "./args.js";

/** A failure with what to tell the user and the exit status. */
export class CtlError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = "CtlError";
  }
}

const NOT_RUNNING = new Set(["org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"]);
const NOT_OFFERED = new Set([
  "org.freedesktop.DBus.Error.UnknownMethod",
  "org.freedesktop.DBus.Error.UnknownObject",
  "org.freedesktop.DBus.Error.UnknownInterface",
]);

/**
 * What a failure means to the user. `action` names the command in messages
 * ("restart", "reload"). Pure, so the table is tested directly.
 */
export function classifyError(err: unknown, bus: BusKind, action: string): CtlError {
  if (err instanceof CtlError) return err;
  if (err instanceof BusConnectError) {
    return new CtlError(`vigild is not running (${err.message})`, CTL_EXIT.notRunning);
  }
  if (err instanceof dbus.DBusError) {
    if (NOT_RUNNING.has(err.type)) {
      return new CtlError(`vigild is not running (no owner for ${BUS_NAME} on the ${bus} bus)`, CTL_EXIT.notRunning);
    }
    if (err.type === "org.freedesktop.DBus.Error.AccessDenied") {
      const message =
        bus === "system"
          ? `permission denied: ${action} needs root (see ${POLICY_FILE})`
          : `permission denied: the session bus refused ${action}: ${err.text}`;
      return new CtlError(message, CTL_EXIT.accessDenied);
    }
    if (err.type === ERRORS.unknownProgram) return new CtlError(err.text, CTL_EXIT.error);
    if (err.type === ERRORS.failed) return new CtlError(`${action} failed: ${err.text}`, CTL_EXIT.error);
    if (err.type === "org.freedesktop.DBus.Error.NoReply" || err.type === "org.freedesktop.DBus.Error.Timeout") {
      return new CtlError(
        `no reply from vigild to ${action} (${err.text}); it may still be at work, see vigilctl status`,
        CTL_EXIT.error,
      );
    }
    if (NOT_OFFERED.has(err.type)) {
      return new CtlError(`vigild does not offer ${action} (${err.text}): is it a different version?`, CTL_EXIT.error);
    }
    return new CtlError(`${action} failed: ${err.type}: ${err.text}`, CTL_EXIT.error);
  }
  return new CtlError(`${action} failed: ${err instanceof Error ? err.message : String(err)}`, CTL_EXIT.error);
}

function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new CtlError(`vigild sent ${what} that is not JSON: ${(err as Error).message}`, CTL_EXIT.error);
  }
}

export class SupervisorClient {
  /** Rejects when the bus drops the connection: dbus-next would leave calls in flight unanswered forever. */
  private readonly closed: Promise<never>;

  private constructor(
    private readonly conn: dbus.MessageBus,
    readonly bus: BusKind,
  ) {
    this.closed = new Promise<never>((_, reject) =>
      onConnectionClosed(conn, () =>
        reject(new CtlError(`the ${bus} bus closed the connection before vigild answered`, CTL_EXIT.error)),
      ),
    );
    this.closed.catch(() => undefined); // observed by call(); also ends quietly after close()
  }

  /** Rejects with a CtlError (exit 3) when the bus cannot be reached. */
  static async connect(bus: BusKind, env: Readonly<Record<string, string | undefined>>): Promise<SupervisorClient> {
    const resolved = resolveBusAddress(bus, undefined, env);
    if (!resolved.ok) {
      throw new CtlError(`vigild is not running (cannot connect to the ${bus} bus: ${resolved.error})`, CTL_EXIT.notRunning);
    }
    try {
      return new SupervisorClient(await connectBus(bus, resolved.address), bus);
    } catch (err) {
      throw classifyError(err, bus, "connect");
    }
  }

  private async call(member: MethodName, body: unknown[] = []): Promise<unknown[]> {
    const message = new dbus.Message({
      destination: BUS_NAME,
      path: OBJECT_PATH,
      interface: INTERFACE,
      member,
      signature: signatureOf(METHODS[member].in),
      body,
    });
    const reply = await Promise.race([this.conn.call(message), this.closed]);
    // dbus-next types a reply's body as any[]; what each member returns is read by its caller.
    const answer: unknown[] = reply?.body ?? [];
    return answer;
  }

  async status(): Promise<StatusSnapshot> {
    const [json] = await this.call("GetStatus");
    return parseJson<StatusSnapshot>(String(json), "a status");
  }

  async restartProgram(program: string): Promise<void> {
    await this.call("RestartProgram", [program]);
  }

  async reload(): Promise<{ ok: boolean; text: string }> {
    const [ok, text] = await this.call("Reload");
    return { ok: ok === true, text: String(text) };
  }

  async lastShutdown(): Promise<LastShutdownReport | null> {
    const [json] = await this.call("GetLastShutdown");
    const text = String(json);
    return text === "" ? null : parseJson<LastShutdownReport>(text, "a last-shutdown report");
  }

  close(): void {
    this.conn.disconnect();
  }
}
