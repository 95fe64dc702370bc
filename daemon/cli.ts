// vigild's command line. Foreground is the only mode: systemd or a terminal
// is the parent.
export const DEFAULT_CONFIG = "/etc/vigil/vigil.yaml";

export type Command =
  | { kind: "run"; config: string }
  | { kind: "check-config"; config: string }
  | { kind: "version" }
  | { kind: "help" };

export type ParsedArgs = { ok: true; command: Command } | { ok: false; error: string };

export const USAGE = `usage: vigild [--config PATH]          run the supervisor in the foreground
       vigild --check-config [--config PATH]   validate the configuration and exit (0 valid, 78 invalid)
       vigild --version
The configuration defaults to ${DEFAULT_CONFIG}.`;

export function parseArgs(argv: readonly string[]): ParsedArgs {
  let config = DEFAULT_CONFIG;
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--version" || arg === "-V") return { ok: true, command: { kind: "version" } };
    if (arg === "--help" || arg === "-h") return { ok: true, command: { kind: "help" } };
    if (arg === "--check-config") check = true;
    else if (arg === "--config" || arg === "-c") {
      const value = argv[++i];
      if (value === undefined || value === "") return { ok: false, error: `${arg} needs a path` };
      config = value;
    } else if (arg.startsWith("--config=")) config = arg.slice("--config=".length);
    else return { ok: false, error: `unknown argument: ${arg}` };
  }
  return { ok: true, command: check ? { kind: "check-config", config } : { kind: "run", config } };
}
