// Under journald, each worker gets journal streams of its own, as a systemd
// service does: systemd-cat connects them (sd_journal_stream_fd(3)) in the
// worker's own process, then execs the worker. vigild is then out of the data
// path: a worker that floods slows only itself when journald falls behind,
// vigild holds none of its output, and the journal records the worker's own
// pid (_PID) with the identifier "program/index".
import fs from "node:fs";

export type OutputRoute = { kind: "journal"; systemdCat: string } | { kind: "log" };

const SYSTEMD_CAT_PATHS = ["/usr/bin/systemd-cat", "/bin/systemd-cat"];

/**
 * Whether vigild's own stdout is the journal: JOURNAL_STREAM names the
 * device and inode of the stream systemd connected (systemd.exec(5)), which
 * a redirected stdout no longer matches.
 */
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env, fd = 1): boolean {
  const match = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? "");
  if (!match) return false;
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    return st.dev === BigInt(match[1]!) && st.ino === BigInt(match[2]!);
  } catch {
    return false;
  }
}

export function chooseOutputRoute(env: NodeJS.ProcessEnv = process.env, candidates = SYSTEMD_CAT_PATHS): OutputRoute {
  if (!stdoutIsJournal(env)) return { kind: "log" };
  const systemdCat = candidates.find((p) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  return systemdCat ? { kind: "journal", systemdCat } : { kind: "log" };
}

/**
 * The command that runs `command` with its stdout and stderr on journal
 * streams. Priorities as systemd's default (info for both); a line that
 * starts with "<N>" is logged at priority N, as for any systemd service.
 */
export function journalCommand(systemdCat: string, identifier: string, command: readonly string[]): string[] {
  return [systemdCat, `--identifier=${identifier}`, "--priority=info", "--stderr-priority=info", "--level-prefix=true", "--", ...command];
}
