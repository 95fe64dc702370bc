// vigilctl's command line, parsed into data. Pure: the environment comes in
// as an argument.
import type { BusKind } from "../dbus/connect.js";

export type CtlCommand =
  | { kind: "status"; json: boolean }
  | { kind: "restart"; program: string }
  | { kind: "reload" }
  | { kind: "last-shutdown"; json: boolean }
  | { kind: "help" }
  | { kind: "version" };

export type CtlArgs = { ok: true; command: CtlCommand; bus: BusKind } | { ok: false; error: string };

/** vigilctl's exit statuses, in one table. */
export const CTL_EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  notRunning: 3,
  accessDenied: 4,
} as const;

export const USAGE = `usage: vigilctl [--bus system|session] COMMAND

commands:
  status [--json]          programs and workers: state, pid, uptime, restarts, heartbeat age
  restart PROGRAM          rolling restart of one program (waits until it is done)
  reload                   reload vigild's configuration (same as systemctl reload vigil)
  last-shutdown [--json]   the report of vigild's previous stop

options:
  --bus system|session     the bus vigild is on (default: system; env VIGIL_BUS)
  -h, --help               this text
  -V, --version            vigilctl's version

The bus address comes from DBUS_SYSTEM_BUS_ADDRESS / DBUS_SESSION_BUS_ADDRESS.
exit status: 0 ok, 1 error, 2 usage, 3 vigild not running, 4 permission denied`;

function parseBus(value: string | undefined, from: string): BusKind | string {
  if (value === "system" || value === "session") return value;
  return `${from} must be "system" or "session", not ${value === undefined || value === "" ? "empty" : JSON.stringify(value)}`;
}

export function parseCtlArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): CtlArgs {
  let bus: BusKind = "system";
  if (env.VIGIL_BUS !== undefined && env.VIGIL_BUS !== "") {
    const b = parseBus(env.VIGIL_BUS, "VIGIL_BUS");
    if (b !== "system" && b !== "session") return { ok: false, error: b };
    bus = b;
  }
  let json = false;
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { ok: true, command: { kind: "help" }, bus };
    if (arg === "--version" || arg === "-V") return { ok: true, command: { kind: "version" }, bus };
    if (arg === "--json") json = true;
    else if (arg === "--bus" || arg.startsWith("--bus=")) {
      const value = arg === "--bus" ? argv[++i] : arg.slice("--bus=".length);
      const b = parseBus(value, "--bus");
      if (b !== "system" && b !== "session") return { ok: false, error: b };
      bus = b;
    } else if (arg === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    } else if (arg.startsWith("-") && arg !== "-") return { ok: false, error: `unknown option: ${arg}` };
    else positional.push(arg);
  }
  const [name, ...rest] = positional;
  if (name === undefined) return { ok: false, error: "missing command" };
  const extra = (n: number): string | null =>
    rest.length > n ? `${name}: unexpected argument: ${rest[n]}` : null;
  const noJson = (): string | null => (json ? `${name} has no --json` : null);
  let command: CtlCommand;
  let error: string | null;
  switch (name) {
    case "status":
      command = { kind: "status", json };
      error = extra(0);
      break;
    case "last-shutdown":
      command = { kind: "last-shutdown", json };
      error = extra(0);
      break;
    case "reload":
      command = { kind: "reload" };
      error = extra(0) ?? noJson();
      break;
    case "restart": {
      const program = rest[0];
      if (program === undefined || program === "") return { ok: false, error: "restart needs a PROGRAM" };
      command = { kind: "restart", program };
      error = extra(1) ?? noJson();
      break;
    }
    default:
      return { ok: false, error: `unknown command: ${name}` };
  }
  return error === null ? { ok: true, command, bus } : { ok: false, error };
}
