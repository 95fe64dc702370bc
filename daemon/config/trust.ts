// sshd's StrictModes for a supervisor that runs as root: a configuration file
// or a worker's program that another user can change is another user's
// root shell. Pure where it can be: the file system is asked through `stat`.
import { realpathSync, statSync, type Stats } from "node:fs";
import path from "node:path";

export type StatFn = (file: string) => Pick<Stats, "uid" | "mode" | "isFile" | "isDirectory"> | null;

const realStat: StatFn = (file) => {
  try {
    return statSync(file);
  } catch {
    return null;
  }
};

const STICKY = 0o1000;

function realPath(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}

/**
 * Why `file` (and the directories above it) could be changed by someone other
 * than root or `allowedUid`, or null when it cannot.
 */
export function untrustedBecause(file: string, allowedUid: number | null = null, stat: StatFn = realStat): string | null {
  // The file that really runs: through symlinks (/usr/bin/python3 -> python3.11).
  let current = realPath(file);
  for (;;) {
    const st = stat(current);
    if (st) {
      const isDir = st.isDirectory();
      if (st.uid !== 0 && st.uid !== allowedUid) return `${current} is owned by uid ${st.uid}, not root`;
      // A sticky directory (like /tmp) lets nobody replace another's file.
      if ((st.mode & 0o022) !== 0 && !(isDir && (st.mode & STICKY) !== 0)) {
        return `${current} is writable by ${st.mode & 0o002 ? "everyone" : "its group"} (mode ${(st.mode & 0o7777).toString(8).padStart(4, "0")})`;
      }
    }
    const parent = path.dirname(current);
    if (parent === current) return null;
    current = parent;
  }
}

/** The executable `command[0]` names, found on PATH as execvp would. */
export function resolveExecutable(command: string, pathEnv: string, stat: StatFn = realStat): string | null {
  if (command.includes("/")) return path.resolve(command);
  for (const dir of pathEnv.split(":")) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    if (stat(candidate)?.isFile()) return candidate;
  }
  return null;
}

/** The files a worker runs: its executable and any argument that is an existing file (a script). */
export function programFiles(command: readonly string[], cwd: string | null, pathEnv: string, stat: StatFn = realStat): string[] {
  const [exe, ...args] = command;
  const files: string[] = [];
  const resolved = exe === undefined ? null : resolveExecutable(exe, pathEnv, stat);
  if (resolved) files.push(resolved);
  for (const arg of args) {
    if (arg.startsWith("-")) continue;
    const candidate = path.resolve(cwd ?? process.cwd(), arg);
    if ((arg.includes("/") || arg.includes(".")) && stat(candidate)?.isFile()) files.push(candidate);
  }
  return files;
}
