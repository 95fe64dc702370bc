// `user:` in the configuration: resolved the way getpwnam(3) would, from
// /etc/passwd (Node has no getpwnam), and applied the way systemd's User=
// is: uid, gid and the user's supplementary groups (initgroups), through
// util-linux's setpriv. Node's own uid/gid options would clear the
// supplementary groups rather than set the user's.
import { readFileSync } from "node:fs";

export interface UserIds {
  uid: number;
  gid: number;
  /** null for a bare numeric uid without a passwd entry. */
  name: string | null;
  home: string | null;
}

export type UserLookup = { ok: true; ids: UserIds } | { ok: false; error: string };

export const SETPRIV = "/usr/bin/setpriv";

export function resolveUser(user: string, passwd = "/etc/passwd"): UserLookup {
  let text: string;
  try {
    text = readFileSync(passwd, "utf8");
  } catch (err) {
    return { ok: false, error: `cannot read ${passwd}: ${(err as Error).message}` };
  }
  const numeric = /^\d+$/.test(user);
  for (const line of text.split("\n")) {
    const [name, , uid, gid, , home] = line.split(":");
    if (name === undefined || uid === undefined || gid === undefined) continue;
    if (numeric ? uid === user : name === user) {
      return { ok: true, ids: { uid: Number(uid), gid: Number(gid), name, home: home ?? null } };
    }
  }
  if (numeric) return { ok: true, ids: { uid: Number(user), gid: Number(user), name: null, home: null } };
  return { ok: false, error: `user "${user}" does not exist` };
}

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
