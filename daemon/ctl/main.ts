#!/usr/bin/env node
// vigilctl: talks to vigild over D-Bus (org.vigil.Supervisor1). Output is
// made by the pure functions in ./format.ts; exit statuses are CTL_EXIT.
import { VERSION } from "../version.js";
import { CTL_EXIT, USAGE, helpText, parseCtlArgs, type CtlCommand, type LogsCommand } from "./args.js";
import { CtlError, SupervisorClient, classifyError } from "./client.js";
import { COLOR, PLAIN, formatLastShutdown, formatReloadFailure, formatStatus, useColor, type Style } from "./format.js";
import { journalIdentifiers, journalctlArgs, journalctlEnv, programIdentifiers, runJournalctl, workerIdentifier } from "./logs.js";

interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Whether stdout is a terminal (colour). */
  isTTY: boolean;
}

type BusCommand = Exclude<CtlCommand, { kind: "help" } | { kind: "version" } | LogsCommand>;

async function execute(client: SupervisorClient, command: BusCommand, io: Io, style: Style): Promise<number> {
  switch (command.kind) {
    case "status": {
      const status = await client.status();
      io.out(command.json ? JSON.stringify(status, null, 2) + "\n" : formatStatus(status, style));
      return CTL_EXIT.ok;
    }
    case "programs": {
      const status = await client.status();
      io.out(status.programs.map((p) => `${p.name}\n`).join(""));
      return CTL_EXIT.ok;
    }
    case "workers": {
      const status = await client.status();
      if (!status.programs.some((p) => p.name === command.program)) {
        throw new CtlError(`no program named ${JSON.stringify(command.program)}`, CTL_EXIT.error);
      }
      io.out(status.workers.filter((w) => w.program === command.program).map((w) => `${w.worker}\n`).join(""));
      return CTL_EXIT.ok;
    }
    case "restart":
      await client.restartProgram(command.program);
      io.out(`restarted ${command.program}\n`);
      return CTL_EXIT.ok;
    case "reload": {
      const result = await client.reload();
      if (result.ok) {
        io.out(result.text.endsWith("\n") || result.text === "" ? result.text : result.text + "\n");
        return CTL_EXIT.ok;
      }
      io.err(formatReloadFailure(result.text));
      return CTL_EXIT.error;
    }
    case "last-shutdown": {
      const report = await client.lastShutdown();
      io.out(command.json ? JSON.stringify(report, null, 2) + "\n" : formatLastShutdown(report, style));
      return CTL_EXIT.ok;
    }
  }
}

/** How long `logs` waits for vigild's list of workers before going on with the journal's. */
const ASK_VIGILD_MS = 2000;

/** The worker indices vigild runs for a program now; none when vigild cannot be asked in time. */
async function runningWorkers(bus: SupervisorClient["bus"], env: NodeJS.ProcessEnv, program: string): Promise<number[]> {
  const ask = async (): Promise<number[]> => {
    // Closed by ask itself, even when the answer comes after the wait is over:
    // an open connection would keep vigilctl alive.
    let client: SupervisorClient | null = null;
    try {
      client = await SupervisorClient.connect(bus, env);
      const status = await client.status();
      return status.workers.filter((w) => w.program === program).map((w) => w.worker);
    } catch {
      return [];
    } finally {
      client?.close();
    }
  };
  let timer: NodeJS.Timeout | undefined;
  // The journal alone still answers: a vigild that is away or stuck only costs the wait.
  const late = new Promise<number[]>((done) => {
    timer = setTimeout(() => done([]), ASK_VIGILD_MS);
    timer.unref();
  });
  try {
    return await Promise.race([ask(), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function logs(command: LogsCommand, bus: SupervisorClient["bus"], env: NodeJS.ProcessEnv, io: Io, color: boolean | null): Promise<number> {
  let identifiers: string[];
  if (command.worker !== null) identifiers = [workerIdentifier(command.program, command.worker)];
  else {
    const [known, running] = await Promise.all([journalIdentifiers(env), runningWorkers(bus, env, command.program)]);
    identifiers = programIdentifiers(command.program, known, running);
  }
  if (identifiers.length === 0) {
    io.err(
      `vigilctl: no output of program ${JSON.stringify(command.program)} in the journal, and vigild runs no such program\n` +
        "(worker output is in the journal when vigild runs under systemd; reading the system journal needs root or the systemd-journal group)\n",
    );
    return CTL_EXIT.error;
  }
  try {
    return await runJournalctl(journalctlArgs(command, identifiers), journalctlEnv(env, color));
  } catch (err) {
    io.err(`vigilctl: ${(err as Error).message}\n`);
    return CTL_EXIT.error;
  }
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const args = parseCtlArgs(argv, env);
  if (!args.ok) {
    io.err(`vigilctl: ${args.error}\n${USAGE}\n`);
    return CTL_EXIT.usage;
  }
  const { command, bus } = args;
  if (command.kind === "help") {
    io.out(helpText(command.topic) + "\n");
    return CTL_EXIT.ok;
  }
  if (command.kind === "version") {
    io.out(`vigilctl ${VERSION}\n`);
    return CTL_EXIT.ok;
  }
  const color = useColor(args.color, io.isTTY, env);
  if (command.kind === "logs") {
    // journalctl decides for itself on auto (it knows NO_COLOR and terminals too).
    return logs(command, bus, env, io, args.color === "auto" ? null : color);
  }
  let client: SupervisorClient | null = null;
  try {
    client = await SupervisorClient.connect(bus, env);
    return await execute(client, command, io, color ? COLOR : PLAIN);
  } catch (err) {
    const failure = err instanceof CtlError ? err : classifyError(err, bus, command.kind);
    io.err(`vigilctl: ${failure.message}\n`);
    return failure.exitCode;
  } finally {
    client?.close();
  }
}

// Set the status and let Node exit on its own, so stdout is flushed even into a pipe.
process.exitCode = await main(process.argv.slice(2), process.env, {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  isTTY: process.stdout.isTTY === true,
});
