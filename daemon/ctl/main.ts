#!/usr/bin/env node
// vigilctl: talks to vigild over D-Bus (org.vigil.Supervisor1). Output is
// made by the pure functions in ./format.ts; exit statuses are CTL_EXIT.
import { VERSION } from "../version.js";
import { CTL_EXIT, USAGE, parseCtlArgs, type CtlCommand } from "./args.js";
import { CtlError, SupervisorClient, classifyError } from "./client.js";
import { formatLastShutdown, formatReloadFailure, formatStatus } from "./format.js";

interface Io {
  out(text: string): void;
  err(text: string): void;
}

async function execute(client: SupervisorClient, command: CtlCommand, io: Io): Promise<number> {
  switch (command.kind) {
    case "status": {
      const status = await client.status();
      io.out(command.json ? JSON.stringify(status, null, 2) + "\n" : formatStatus(status));
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
      io.out(command.json ? JSON.stringify(report, null, 2) + "\n" : formatLastShutdown(report));
      return CTL_EXIT.ok;
    }
    case "help":
    case "version":
      return CTL_EXIT.ok; // answered without a bus
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
    io.out(USAGE + "\n");
    return CTL_EXIT.ok;
  }
  if (command.kind === "version") {
    io.out(`vigilctl ${VERSION}\n`);
    return CTL_EXIT.ok;
  }
  let client: SupervisorClient | null = null;
  try {
    client = await SupervisorClient.connect(bus, env);
    return await execute(client, command, io);
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
});
