// `vigilctl logs`: a program's output, read from the journal by journalctl,
// so vigil keeps no log storage of its own.
//
// Under journald each worker runs behind `systemd-cat --identifier=PROGRAM/INDEX`
// (../worker/journal.ts): every line it prints is a journal entry with
// SYSLOG_IDENTIFIER=PROGRAM/INDEX and the worker's own _PID. journalctl ORs
// matches on the same field, so a whole program is one SYSLOG_IDENTIFIER=
// match per worker index. Which indices: every one the journal has seen for
// the program (a program that had more instances before a reload still shows
// their lines), plus the ones vigild runs now (so -f follows a worker that
// has not printed anything yet).
import { spawn } from "node:child_process";
import type { LogsCommand } from "./args.js";
import { CTL_EXIT } from "./args.js";

export const IDENTIFIER_FIELD = "SYSLOG_IDENTIFIER";

/** The journal identifier of one worker, as vigild gives it to systemd-cat. */
export function workerIdentifier(program: string, worker: number): string {
  return `${program}/${worker}`;
}

/**
 * The identifiers to match for a program: those of `known` (journalctl -F
 * SYSLOG_IDENTIFIER) that are PROGRAM/INDEX, and PROGRAM/i for every index
 * in `running`, sorted by index, each once.
 */
export function programIdentifiers(program: string, known: readonly string[], running: readonly number[]): string[] {
  const indices = new Set<number>(running);
  const prefix = `${program}/`;
  for (const id of known) {
    if (!id.startsWith(prefix)) continue;
    const rest = id.slice(prefix.length);
    if (/^\d{1,6}$/.test(rest)) indices.add(Number(rest));
  }
  return [...indices].sort((a, b) => a - b).map((i) => workerIdentifier(program, i));
}

/** journalctl's arguments for `vigilctl logs`, given the identifiers to match. */
export function journalctlArgs(command: LogsCommand, identifiers: readonly string[]): string[] {
  const args: string[] = [];
  if (command.follow) args.push("--follow");
  if (command.priority !== null) args.push(`--priority=${command.priority}`);
  if (command.lines !== null) args.push(`--lines=${command.lines}`);
  for (const id of identifiers) args.push(`${IDENTIFIER_FIELD}=${id}`);
  return args;
}

/** journalctl's colour, from vigilctl's: SYSTEMD_COLORS=0/1 (systemd(1) environment). */
export function journalctlEnv(env: NodeJS.ProcessEnv, color: boolean | null): NodeJS.ProcessEnv {
  if (color === null) return env;
  return { ...env, SYSTEMD_COLORS: color ? "1" : "0" };
}

/** Runs a command to its end and returns its stdout; null when it cannot run or fails. */
export function captureStdout(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<string | null> {
  return new Promise((done) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.once("error", () => done(null));
    child.once("close", (code) => done(code === 0 ? out : null));
  });
}

/** Every value of SYSLOG_IDENTIFIER in the journal this user may read. */
export async function journalIdentifiers(env: NodeJS.ProcessEnv): Promise<string[]> {
  const out = await captureStdout(["journalctl", `--field=${IDENTIFIER_FIELD}`], env);
  return out === null ? [] : out.split("\n").filter((line) => line !== "");
}

/**
 * Runs journalctl with the terminal (its pager, its colours, Ctrl-C) and
 * resolves with its exit status. vigilctl ignores SIGINT meanwhile: Ctrl-C
 * reaches journalctl too, which ends `-f` and exits.
 */
export function runJournalctl(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((done, fail) => {
    const child = spawn("journalctl", args, { env, stdio: "inherit" });
    const ignore = (): void => undefined;
    const forward = (signal: NodeJS.Signals) => (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    };
    const onTerm = forward("SIGTERM");
    const onHup = forward("SIGHUP");
    process.on("SIGINT", ignore);
    process.on("SIGTERM", onTerm);
    process.on("SIGHUP", onHup);
    const cleanup = (): void => {
      process.off("SIGINT", ignore);
      process.off("SIGTERM", onTerm);
      process.off("SIGHUP", onHup);
    };
    child.once("error", (err: NodeJS.ErrnoException) => {
      cleanup();
      fail(err.code === "ENOENT" ? new Error("journalctl is not installed: vigilctl logs reads the systemd journal") : err);
    });
    child.once("close", (code, signal) => {
      cleanup();
      // Ended by Ctrl-C (journalctl -f): a normal end for the user.
      done(code ?? (signal === "SIGINT" ? CTL_EXIT.ok : CTL_EXIT.error));
    });
  });
}
