// vigild on D-Bus: the object /org/vigil/Supervisor1 with the interface
// org.vigil.Supervisor1 under the name org.vigil.Supervisor1. It only
// translates between the bus and the daemon's Control (daemon/control.ts);
// the API itself is defined in ./types.ts.
//
// dbus-next's decorators need TypeScript's experimental decorators, so the
// members are declared with Interface.configureMembers() instead.
import dbus from "dbus-next";
import { UnknownProgramError, type Control, type ControlEvent, type ReloadResult } from "../control.js";
import { BUS_NAME, ERRORS, INTERFACE, METHODS, OBJECT_PATH, POLICY_FILE, PROPERTIES, SIGNALS, eventToSignal, signatureOf, workerToRow, type Arg, type PropertyName, type WorkerExitedArgs, type WorkerHungArgs, type WorkerRow } from "./contract.js";
import { connectBus, describeDbusError, onConnectionClosed, resolveBusAddress, type BusKind } from "./connect.js";

export interface DbusServiceOptions {
  bus: BusKind;
  /** Overrides DBUS_SYSTEM_BUS_ADDRESS / DBUS_SESSION_BUS_ADDRESS. */
  address?: string;
  log: { info(m: string): void; warn(m: string): void };
  /** Called once when the connection is lost (the bus went away), so the caller can reconnect. */
  onLost?: () => void;
}

export interface DbusService {
  /**
   * Tell the bus that State/StatusText/Workers may have changed; a
   * PropertiesChanged signal goes out for those that did. Optional: the
   * service also checks on every control event.
   */
  propertiesMaybeChanged(): void;
  /** Release the name and disconnect. Bounded; never rejects. */
  close(): Promise<void>;
}

/** Bound for RequestName at start: a wedged bus must not hold up vigild's readiness forever. */
const REQUEST_NAME_TIMEOUT_MS = 10_000;
/** Bound for ReleaseName at close: a dead bus must not hold up vigild's exit. */
const CLOSE_TIMEOUT_MS = 1000;

function dbusError(type: string, text: string): dbus.DBusError {
  return new dbus.DBusError(type, text);
}

/** Any failure of the daemon becomes a named D-Bus error with its message, not dbus-next's stack dump. */
function toDbusError(err: unknown): dbus.DBusError {
  if (err instanceof dbus.DBusError) return err;
  if (err instanceof UnknownProgramError) return dbusError(ERRORS.unknownProgram, err.message);
  return dbusError(ERRORS.failed, err instanceof Error ? err.message : String(err));
}

function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toDbusError(err);
  }
}

type PropertyValues = Record<Exclude<PropertyName, "Version">, string | number>;

class SupervisorInterface extends dbus.interface.Interface {
  /** Set once the connection is closed or lost: replies can no longer be sent. */
  detached = false;

  constructor(private readonly control: Control) {
    super(INTERFACE);
  }

  /**
   * What a long call (restart, reload) ends with when the connection closed
   * meanwhile: dbus-next would throw from its reply path into an unhandled
   * rejection. A promise that never settles holds no resources; the caller
   * gets NoReply from the bus, which saw us disconnect.
   */
  private dropped(): Promise<never> {
    return new Promise<never>(() => undefined);
  }

  get State(): string {
    return guard(() => this.control.status().state);
  }

  get Version(): string {
    return guard(() => this.control.status().version);
  }

  get StatusText(): string {
    return guard(() => this.control.status().statusText);
  }

  get Workers(): number {
    return guard(() => this.control.status().workers.length);
  }

  /** The values of the properties that can change, read in one status() call. */
  changeableValues(): PropertyValues {
    const s = this.control.status();
    return { State: s.state, StatusText: s.statusText, Workers: s.workers.length };
  }

  ListWorkers(): WorkerRow[] {
    return guard(() => this.control.status().workers.map(workerToRow));
  }

  GetStatus(): string {
    return guard(() => JSON.stringify(this.control.status()));
  }

  async RestartProgram(program: string): Promise<void> {
    try {
      await this.control.restartProgram(program);
    } catch (err) {
      if (this.detached) return this.dropped();
      throw toDbusError(err);
    }
    if (this.detached) return this.dropped();
  }

  async Reload(): Promise<[boolean, string]> {
    let result: ReloadResult;
    try {
      result = await this.control.reload();
    } catch (err) {
      if (this.detached) return this.dropped();
      throw toDbusError(err);
    }
    if (this.detached) return this.dropped();
    // A failed reload is an answer, not an error: the daemon keeps running on the old configuration.
    return result.ok ? [true, result.summary] : [false, result.errors.join("\n")];
  }

  GetLastShutdown(): string {
    return guard(() => {
      const report = this.control.lastShutdown();
      return report === null ? "" : JSON.stringify(report);
    });
  }

  // Signals: configureMembers wraps these so calling one emits it with the returned arguments.
  WorkerHung(...args: WorkerHungArgs): WorkerHungArgs {
    return args;
  }

  WorkerExited(...args: WorkerExitedArgs): WorkerExitedArgs {
    return args;
  }

  /**
   * dbus-next's own introspection leaves arguments unnamed and has no
   * annotations; this one is built from the API table in ./types.ts. The
   * shape is what dbus-next's xml2js builder takes.
   */
  $introspect(): IntrospectInterface {
    const args = (list: readonly Arg[], direction?: "in" | "out"): IntrospectArg[] =>
      list.map((x) => ({ $: direction ? { name: x.name, type: x.type, direction } : { name: x.name, type: x.type } }));
    return {
      $: { name: INTERFACE },
      method: Object.entries(METHODS).map(([name, m]) => ({
        $: { name },
        arg: [...args(m.in, "in"), ...args(m.out, "out")],
      })),
      signal: Object.entries(SIGNALS).map(([name, list]) => ({ $: { name }, arg: args(list) })),
      property: Object.entries(PROPERTIES).map(([name, p]) => ({
        $: { name, type: p.type, access: "read" },
        annotation: [{ $: { name: "org.freedesktop.DBus.Property.EmitsChangedSignal", value: p.emitsChanged } }],
      })),
    };
  }
}

interface IntrospectArg {
  $: { name: string; type: string; direction?: "in" | "out" };
}
interface IntrospectInterface {
  $: { name: string };
  method: Array<{ $: { name: string }; arg: IntrospectArg[] }>;
  signal: Array<{ $: { name: string }; arg: IntrospectArg[] }>;
  property: Array<{
    $: { name: string; type: string; access: "read" };
    annotation: Array<{ $: { name: string; value: string } }>;
  }>;
}

SupervisorInterface.configureMembers({
  methods: Object.fromEntries(
    Object.entries(METHODS).map(([name, m]) => [
      name,
      { inSignature: signatureOf(m.in), outSignature: signatureOf(m.out) },
    ]),
  ),
  signals: Object.fromEntries(Object.entries(SIGNALS).map(([name, list]) => [name, { signature: signatureOf(list) }])),
  properties: Object.fromEntries(
    Object.entries(PROPERTIES).map(([name, p]) => [name, { signature: p.type, access: dbus.interface.ACCESS_READ }]),
  ),
});

function nameError(bus: BusKind, err: unknown): Error {
  if (err instanceof dbus.DBusError && err.type === "org.freedesktop.DBus.Error.AccessDenied") {
    const hint = bus === "system" ? ` (install ${POLICY_FILE} and reload dbus)` : "";
    return new Error(`not allowed to own the D-Bus name ${BUS_NAME} on the ${bus} bus${hint}: ${err.text}`);
  }
  return new Error(`cannot request the D-Bus name ${BUS_NAME} on the ${bus} bus: ${describeDbusError(err)}`);
}

/**
 * Connect to the bus, export the object, take the name (without queueing:
 * a second vigild must not silently wait behind the first) and forward the
 * daemon's events as signals. Rejects with a clear Error when the bus is
 * unreachable or the name is taken.
 */
export async function startDbusService(control: Control, opts: DbusServiceOptions): Promise<DbusService> {
  const { log } = opts;
  const resolved = resolveBusAddress(opts.bus, opts.address, process.env);
  if (!resolved.ok) throw new Error(`cannot connect to the ${opts.bus} bus: ${resolved.error}`);
  const bus = await connectBus(opts.bus, resolved.address);

  const iface = new SupervisorInterface(control);
  bus.export(OBJECT_PATH, iface);

  let reply: number;
  let timer: NodeJS.Timeout | undefined;
  let onError: ((err: unknown) => void) | undefined;
  try {
    // dbus-next never settles a call whose connection fails: bound it, and fail on the connection's error.
    reply = await Promise.race([
      bus.requestName(BUS_NAME, dbus.NameFlag.DO_NOT_QUEUE),
      new Promise<never>((_, reject) => {
        onError = reject;
        bus.on("error", onError);
        timer = setTimeout(() => reject(new Error(`no answer within ${REQUEST_NAME_TIMEOUT_MS} ms`)), REQUEST_NAME_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    bus.disconnect();
    throw nameError(opts.bus, err);
  } finally {
    clearTimeout(timer);
    if (onError) bus.removeListener("error", onError);
  }
  if (reply !== dbus.RequestNameReply.PRIMARY_OWNER && reply !== dbus.RequestNameReply.ALREADY_OWNER) {
    bus.disconnect();
    throw new Error(
      `the D-Bus name ${BUS_NAME} is already owned on the ${opts.bus} bus (${resolved.address}): is another vigild running?`,
    );
  }

  let state: "serving" | "lost" | "closed" = "serving";
  let unsubscribe: () => void = () => undefined;
  const lost = (why: string): void => {
    if (state !== "serving") return;
    state = "lost";
    iface.detached = true;
    unsubscribe();
    log.warn(`D-Bus connection lost (${why})${opts.onLost ? "; reconnecting" : "; vigilctl cannot reach vigild until it restarts"}`);
    opts.onLost?.();
  };
  bus.on("error", (err: unknown) => lost(describeDbusError(err)));
  onConnectionClosed(bus, () => lost("the bus closed the connection"));

  let last: PropertyValues | null = null;
  try {
    last = iface.changeableValues();
  } catch {
    // Read again on the next change check.
  }

  const propertiesMaybeChanged = (): void => {
    if (state !== "serving") return;
    let now: PropertyValues;
    try {
      now = iface.changeableValues();
    } catch {
      return;
    }
    const changed: Partial<PropertyValues> = {};
    for (const key of Object.keys(now) as Array<keyof PropertyValues>) {
      if (last === null || last[key] !== now[key]) changed[key] = now[key];
    }
    last = now;
    if (Object.keys(changed).length === 0) return;
    try {
      dbus.interface.Interface.emitPropertiesChanged(iface, changed, []);
    } catch (err) {
      log.warn(`D-Bus PropertiesChanged not sent: ${describeDbusError(err)}`);
    }
  };

  unsubscribe = control.subscribe((event: ControlEvent) => {
    if (state !== "serving") return;
    const signal = eventToSignal(event);
    try {
      if (signal.name === "WorkerHung") iface.WorkerHung(...signal.args);
      else iface.WorkerExited(...signal.args);
    } catch (err) {
      // dbus-next throws synchronously when the socket is already closed.
      log.warn(`D-Bus signal ${signal.name} not sent: ${describeDbusError(err)}`);
    }
    propertiesMaybeChanged();
  });

  log.info(`D-Bus: serving ${BUS_NAME} on the ${opts.bus} bus`);

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const wasServing = state === "serving";
      state = "closed";
      unsubscribe();
      iface.detached = true;
      if (wasServing) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          bus.releaseName(BUS_NAME).catch(() => undefined),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
          }),
        ]);
        clearTimeout(timer);
      }
      try {
        bus.unexport(OBJECT_PATH, iface);
      } catch {
        // Already gone with the connection.
      }
      bus.disconnect();
    })();
    return closing;
  };

  return { propertiesMaybeChanged, close };
}
