// vigilctl's command line, parsed into data. Pure: the environment comes in
// as an argument. Every command is described once, in COMMANDS: the parser,
// `--help` for each command and the general usage are all made from it.
import type { BusKind } from "../dbus/connect.js";

export type ColorMode = "auto" | "always" | "never";

export interface LogsCommand {
  kind: "logs";
  program: string;
  /** One worker's output; null for every worker of the program. */
  worker: number | null;
  follow: boolean;
  /** journalctl -p: a name (err, warning, ...), 0-7, or a range FROM..TO. */
  priority: string | null;
  /** journalctl -n: the last N lines (with -f: before following). */
  lines: number | null;
}

export type CtlCommand =
  | { kind: "status"; json: boolean }
  | { kind: "restart"; program: string }
  | { kind: "reload" }
  | { kind: "last-shutdown"; json: boolean }
  | LogsCommand
  /** For shell completion (not listed in the usage): program names, one a line. */
  | { kind: "programs" }
  /** For shell completion: a program's worker indices, one a line. */
  | { kind: "workers"; program: string }
  /** `topic`: a command's own help; null for the general usage. */
  | { kind: "help"; topic: CommandName | null }
  | { kind: "version" };

export type CtlArgs = { ok: true; command: CtlCommand; bus: BusKind; color: ColorMode } | { ok: false; error: string };

/** vigilctl's exit statuses, in one table. */
export const CTL_EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  notRunning: 3,
  accessDenied: 4,
} as const;

interface OptionSpec {
  /** As written in the help, e.g. "-p, --priority PRIORITY". */
  synopsis: string;
  summary: string;
}

interface CommandSpec {
  synopsis: string;
  summary: string;
  /** Paragraphs after the synopsis in `vigilctl COMMAND --help`. */
  details: string;
  options: readonly OptionSpec[];
  /** Left out of the usage and of completion's command list. */
  hidden?: boolean;
}

const JSON_OPTION: OptionSpec = { synopsis: "--json", summary: "print what vigild answered as JSON, for scripts" };

export const COMMANDS = {
  status: {
    synopsis: "status [--json]",
    summary: "programs and workers: state, pid, uptime, restarts, heartbeat age",
    details:
      "Shows vigild's state and status line, one row per program (state, ready workers,\n" +
      "teardown mode, restarts by reason) and one row per worker (state, pid, uptime,\n" +
      "restarts, age of the last heartbeat, the status the worker reported).",
    options: [JSON_OPTION],
  },
  restart: {
    synopsis: "restart PROGRAM",
    summary: "rolling restart of one program (waits until it is done)",
    details:
      "Replaces the program's workers one at a time: each new worker is ready before\n" +
      "the old one stops. Returns when the last one is replaced. Needs root on the\n" +
      "system bus.",
    options: [],
  },
  reload: {
    synopsis: "reload",
    summary: "reload vigild's configuration (same as systemctl reload vigil)",
    details:
      "vigild re-reads its configuration file and applies the difference. A file with\n" +
      "errors is refused (they are printed, exit status 1) and the running\n" +
      "configuration is kept. Needs root on the system bus.",
    options: [],
  },
  "last-shutdown": {
    synopsis: "last-shutdown [--json]",
    summary: "the report of vigild's previous stop",
    details:
      "Per worker: the outcome of its stop (clean, skipped, forced, unkillable), the\n" +
      "phase that hung if one did, and how long its handlers and teardown took.",
    options: [JSON_OPTION],
  },
  logs: {
    synopsis: "logs PROGRAM [WORKER] [-f] [-p PRIORITY] [-n LINES]",
    summary: "a program's or one worker's output, from the journal",
    details:
      "Runs journalctl with the matches for PROGRAM's workers (journal identifier\n" +
      "PROGRAM/WORKER, as vigild writes them under systemd), so it shows what the\n" +
      "workers printed, with their own pids. vigild's own lines about the program are\n" +
      "in `journalctl -u vigil` (they carry program=PROGRAM). Reading the system\n" +
      "journal needs root or the systemd-journal group.",
    options: [
      { synopsis: "-f, --follow", summary: "keep printing new lines as they come" },
      { synopsis: "-p, --priority PRIORITY", summary: "only lines at this priority or more urgent: emerg, alert, crit,\n                           err, warning, notice, info, debug, 0-7, or FROM..TO" },
      { synopsis: "-n, --lines LINES", summary: "only the last LINES lines" },
    ],
  },
  help: {
    synopsis: "help [COMMAND]",
    summary: "this text, or one command's",
    details: "",
    options: [],
  },
  programs: {
    synopsis: "programs",
    summary: "program names, one a line (for shell completion)",
    details: "",
    options: [],
    hidden: true,
  },
  workers: {
    synopsis: "workers PROGRAM",
    summary: "a program's worker indices, one a line (for shell completion)",
    details: "",
    options: [],
    hidden: true,
  },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

function isCommand(name: string): name is CommandName {
  return Object.prototype.hasOwnProperty.call(COMMANDS, name);
}

const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  { synopsis: "--bus system|session", summary: "the bus vigild is on (default: system; env VIGIL_BUS)" },
  { synopsis: "--color auto|always|never", summary: "colour on a terminal (auto, the default; NO_COLOR turns it off)" },
  { synopsis: "-h, --help", summary: "this text; COMMAND --help for one command" },
  { synopsis: "-V, --version", summary: "vigilctl's version" },
];

const COLUMN = 25;

/** "  SYNOPSIS  summary", the summary on its own line when the synopsis is too long. */
function entry(synopsis: string, summary: string): string {
  return synopsis.length < COLUMN - 1 ? `  ${synopsis.padEnd(COLUMN)}${summary}` : `  ${synopsis}\n${" ".repeat(COLUMN + 2)}${summary}`;
}

function optionLines(options: readonly OptionSpec[]): string[] {
  return options.map((o) => entry(o.synopsis, o.summary));
}

const EXIT_LINE = "exit status: 0 ok, 1 error, 2 usage, 3 vigild not running, 4 permission denied";

export const USAGE = [
  "usage: vigilctl [--bus system|session] [--color WHEN] COMMAND [ARGS]",
  "",
  "commands:",
  ...Object.values(COMMANDS)
    .filter((c: CommandSpec) => c.hidden !== true)
    .map((c) => entry(c.synopsis, c.summary)),
  "",
  "options:",
  ...optionLines(GLOBAL_OPTIONS),
  "",
  "The bus address comes from DBUS_SYSTEM_BUS_ADDRESS / DBUS_SESSION_BUS_ADDRESS.",
  EXIT_LINE,
].join("\n");

/** `vigilctl COMMAND --help`. */
export function commandHelp(name: CommandName): string {
  const spec: CommandSpec = COMMANDS[name];
  const out = [`usage: vigilctl [--bus system|session] ${spec.synopsis}`, "", spec.summary];
  if (spec.details !== "") out.push("", spec.details);
  if (spec.options.length > 0) out.push("", "options:", ...optionLines(spec.options));
  out.push("", "global options: --bus system|session, --color auto|always|never (see vigilctl --help)", EXIT_LINE);
  return out.join("\n");
}

/** The help text for a parsed help command. */
export function helpText(topic: CommandName | null): string {
  return topic === null ? USAGE : commandHelp(topic);
}

function parseBus(value: string | undefined, from: string): { bus: BusKind } | { error: string } {
  if (value === "system" || value === "session") return { bus: value };
  return { error: `${from} must be "system" or "session", not ${value === undefined || value === "" ? "empty" : JSON.stringify(value)}` };
}

const PRIORITY_NAMES = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];
const PRIORITY_ONE = `(?:[0-7]|${PRIORITY_NAMES.join("|")})`;
const PRIORITY = new RegExp(`^${PRIORITY_ONE}(?:\\.\\.${PRIORITY_ONE})?$`);

/** Whether journalctl -p takes it: a level name or 0-7, or a range FROM..TO. */
export function isPriority(text: string): boolean {
  return PRIORITY.test(text);
}

/** Options that take a value, by every spelling, and the name they are stored under. */
const VALUED: Record<string, string> = {
  "--bus": "bus",
  "--color": "color",
  "--colour": "color",
  "-p": "priority",
  "--priority": "priority",
  "-n": "lines",
  "--lines": "lines",
};
const FLAGS: Record<string, string> = {
  "--json": "json",
  "-f": "follow",
  "--follow": "follow",
  "-h": "help",
  "--help": "help",
  "-V": "version",
  "--version": "version",
};
/** The options each command accepts beyond the global ones. */
const COMMAND_OPTIONS: Record<CommandName, readonly string[]> = {
  status: ["json"],
  "last-shutdown": ["json"],
  restart: [],
  reload: [],
  logs: ["follow", "priority", "lines"],
  help: [],
  programs: [],
  workers: [],
};
const SPELLING: Record<string, string> = { json: "--json", follow: "-f", priority: "-p", lines: "-n" };

export function parseCtlArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): CtlArgs {
  let bus: BusKind = "system";
  if (env.VIGIL_BUS !== undefined && env.VIGIL_BUS !== "") {
    const b = parseBus(env.VIGIL_BUS, "VIGIL_BUS");
    if ("error" in b) return { ok: false, error: b.error };
    bus = b.bus;
  }
  let color: ColorMode = "auto";
  const seen = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positional.push(arg);
      continue;
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flagName = eq === -1 ? arg : arg.slice(0, eq);
    // -pVALUE and -nVALUE, as journalctl takes them.
    const shortWithValue = /^-[pn]./.test(arg) ? arg.slice(0, 2) : null;
    const valued = VALUED[flagName] ?? (shortWithValue !== null ? VALUED[shortWithValue] : undefined);
    if (valued !== undefined) {
      let value: string | undefined;
      if (eq !== -1) value = arg.slice(eq + 1);
      else if (shortWithValue !== null && arg !== shortWithValue) value = arg.slice(2);
      else value = argv[++i];
      if (valued === "bus") {
        const b = parseBus(value, "--bus");
        if ("error" in b) return { ok: false, error: b.error };
        bus = b.bus;
      } else if (valued === "color") {
        if (value !== "auto" && value !== "always" && value !== "never") {
          return { ok: false, error: `--color must be auto, always or never, not ${value === undefined || value === "" ? "empty" : JSON.stringify(value)}` };
        }
        color = value;
      } else {
        if (value === undefined || value === "") return { ok: false, error: `${SPELLING[valued]} needs a value` };
        seen.set(valued, value);
      }
      continue;
    }
    const flag = eq === -1 ? FLAGS[arg] : undefined;
    if (flag === undefined) return { ok: false, error: `unknown option: ${arg}` };
    seen.set(flag, "");
  }

  const [name, ...rest] = positional;
  if (seen.has("version") && !seen.has("help")) return { ok: true, command: { kind: "version" }, bus, color };
  if (name === undefined) {
    return seen.has("help") ? { ok: true, command: { kind: "help", topic: null }, bus, color } : { ok: false, error: "missing command" };
  }
  if (!isCommand(name)) return { ok: false, error: `unknown command: ${name}` };
  if (seen.has("help")) return { ok: true, command: { kind: "help", topic: name }, bus, color };
  const done = (command: CtlCommand): CtlArgs => ({ ok: true, command, bus, color });

  for (const option of seen.keys()) {
    if (!COMMAND_OPTIONS[name].includes(option)) return { ok: false, error: `${name} has no ${SPELLING[option] ?? option}` };
  }
  const maxArgs: Record<CommandName, number> = {
    status: 0,
    "last-shutdown": 0,
    reload: 0,
    restart: 1,
    logs: 2,
    help: 1,
    programs: 0,
    workers: 1,
  };
  if (rest.length > maxArgs[name]) return { ok: false, error: `${name}: unexpected argument: ${rest[maxArgs[name]]}` };
  const program = rest[0];
  const json = seen.has("json");
  switch (name) {
    case "status":
      return done({ kind: "status", json });
    case "last-shutdown":
      return done({ kind: "last-shutdown", json });
    case "reload":
      return done({ kind: "reload" });
    case "programs":
      return done({ kind: "programs" });
    case "help": {
      if (program === undefined) return done({ kind: "help", topic: null });
      if (!isCommand(program)) return { ok: false, error: `help: unknown command: ${program}` };
      return done({ kind: "help", topic: program });
    }
    case "restart":
    case "workers":
      if (program === undefined || program === "") return { ok: false, error: `${name} needs a PROGRAM` };
      return done(name === "restart" ? { kind: "restart", program } : { kind: "workers", program });
    case "logs": {
      if (program === undefined || program === "") return { ok: false, error: "logs needs a PROGRAM" };
      let worker: number | null = null;
      if (rest[1] !== undefined) {
        if (!/^\d{1,6}$/.test(rest[1])) return { ok: false, error: `logs: WORKER must be a worker index (0, 1, ...), not ${JSON.stringify(rest[1])}` };
        worker = Number(rest[1]);
      }
      const priority = seen.get("priority") ?? null;
      if (priority !== null && !isPriority(priority)) {
        return {
          ok: false,
          error: `-p must be emerg, alert, crit, err, warning, notice, info, debug, 0-7 or FROM..TO, not ${JSON.stringify(priority)}`,
        };
      }
      const linesText = seen.get("lines");
      let lines: number | null = null;
      if (linesText !== undefined) {
        if (!/^\d{1,9}$/.test(linesText)) return { ok: false, error: `-n must be a number of lines, not ${JSON.stringify(linesText)}` };
        lines = Number(linesText);
      }
      return done({ kind: "logs", program, worker, follow: seen.has("follow"), priority, lines });
    }
  }
}
