#!/usr/bin/env node
// vigild's entry point: parse the command line, load the configuration once,
// build the daemon, exit with a status from the one table.
import { USAGE, parseArgs } from "./cli.js";
import { systemClock } from "./clock/clock.js";
import { ConfigError, loadConfigFile } from "./config/load.js";
import type { Config } from "./config/types.js";
import { Daemon } from "./daemon.js";
import { EXIT } from "./exit-codes.js";
import { createLogger } from "./log/logger.js";
import { systemdNotifier } from "./systemd/notify.js";
import { VERSION } from "./version.js";
import { takeInheritedSockets } from "./sockets/inherited.js";

/** Running as root, vigild refuses files other users could change (sshd's StrictModes). */
function load(file: string): Config {
  return loadConfigFile(file, { requireTrusted: process.getuid?.() === 0 });
}

function loadOrExplain(file: string): Config | null {
  try {
    return load(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return null;
    }
    throw err;
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`vigild: ${parsed.error}\n${USAGE}\n`);
    return EXIT.usage;
  }
  const { command } = parsed;
  switch (command.kind) {
    case "version":
      process.stdout.write(`vigild ${VERSION}\n`);
      return EXIT.ok;
    case "help":
      process.stdout.write(`${USAGE}\n`);
      return EXIT.ok;
    case "check-config": {
      const config = loadOrExplain(command.config);
      if (!config) return EXIT.config;
      const workers = config.programs.reduce((n, p) => n + p.instances, 0);
      process.stdout.write(`${config.file}: valid (${config.programs.length} programs, ${workers} workers)\n`);
      return EXIT.ok;
    }
    case "run": {
      const config = loadOrExplain(command.config);
      if (!config) return EXIT.config;
      const log = createLogger({ level: config.log.level, format: config.log.format });
      // Taken before anything else can start a process that would inherit LISTEN_*.
      const inherited = takeInheritedSockets();
      try {
        return await new Daemon({ config, clock: systemClock, log, notifier: systemdNotifier(), loadConfig: load, inherited }).run();
      } catch (err) {
        log.error(`fatal: ${(err as Error).message}`);
        return EXIT.fatal;
      }
    }
  }
}

main(process.argv.slice(2)).then(
  (status) => {
    // Let stdout drain before the status is final.
    process.exitCode = status;
    if (status !== EXIT.ok) setImmediate(() => process.exit(status));
    // A clean stop ends by itself once every handle is closed; should one
    // leak, this unref'd timer still ends vigild instead of hanging the stop.
    else setTimeout(() => process.exit(status), 2000).unref();
  },
  (err: unknown) => {
    process.stderr.write(`vigild: fatal: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(EXIT.fatal);
  },
);
