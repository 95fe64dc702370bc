// `user:` applied the way systemd's User= is: uid, gid and the user's
// supplementary groups (initgroups), through util-linux's setpriv. Node's own
// uid/gid options would clear the supplementary groups rather than set the
// user's.
import type { UserIds } from "../config/users.js";

export { resolveUser, type UserIds } from "../config/users.js";

export const SETPRIV = "/usr/bin/setpriv";

export type Drop = { ok: true; command: string[]; env: Record<string, string> } | { ok: false; error: string };

/** The command and environment that run `command` as `ids`, from a root vigild. */
export function dropPrivileges(command: readonly string[], ids: UserIds, vigildUid: number | undefined): Drop {
  if (vigildUid !== 0) return { ok: false, error: "user: needs vigild to run as root" };
  const groups = ids.name !== null ? "--init-groups" : "--clear-groups";
  const env: Record<string, string> = {};
  if (ids.name !== null) {
    env.USER = ids.name;
    env.LOGNAME = ids.name;
  }
  if (ids.home) env.HOME = ids.home;
  return { ok: true, command: [SETPRIV, `--reuid=${ids.uid}`, `--regid=${ids.gid}`, groups, "--", ...command], env };
}
