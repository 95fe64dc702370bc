// `user:` in the configuration, resolved the way getpwnam(3) would, from
// /etc/passwd (Node has no getpwnam). The loader checks the user exists; the
// worker edge drops privileges to it (worker/user.ts).
import { readFileSync } from "node:fs";

export interface UserIds {
  uid: number;
  gid: number;
  /** null for a bare numeric uid without a passwd entry. */
  name: string | null;
  home: string | null;
}

export type UserLookup = { ok: true; ids: UserIds } | { ok: false; error: string };

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
