// Sockets systemd passed to vigild itself (a vigil.socket unit), read by the
// rules of sd_listen_fds(3): only when LISTEN_PID is vigild's pid, fds 3,
// 4, ... LISTEN_FDS of them, named by LISTEN_FDNAMES. The variables are
// removed from vigild's environment so nothing it starts mistakes them for
// its own (workers get LISTEN_* that vigild sets for them).

export const SD_LISTEN_FDS_START = 3;

export interface Inherited {
  /** name -> fd; a name systemd gave twice keeps its first fd. */
  byName: Map<string, number>;
  /** Why LISTEN_* was ignored, when it was set but not for vigild. */
  ignored: string | null;
}

export function takeInheritedSockets(env: NodeJS.ProcessEnv = process.env, pid = process.pid): Inherited {
  const fds = env.LISTEN_FDS;
  const listenPid = env.LISTEN_PID;
  const names = env.LISTEN_FDNAMES;
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  const byName = new Map<string, number>();
  if (fds === undefined) return { byName, ignored: null };
  if (listenPid !== String(pid)) return { byName, ignored: `LISTEN_PID=${listenPid ?? "(unset)"} is not vigild's pid ${pid}` };
  const count = Number(fds);
  if (!Number.isInteger(count) || count < 0) return { byName, ignored: `LISTEN_FDS=${fds} is not a count` };
  const list = names?.split(":") ?? [];
  for (let i = 0; i < count; i++) {
    // systemd names an unnamed socket "unknown" (sd_listen_fds_with_names(3)).
    const name = list[i] || "unknown";
    if (!byName.has(name)) byName.set(name, SD_LISTEN_FDS_START + i);
  }
  return { byName, ignored: null };
}
