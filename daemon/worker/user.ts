// `user:` in the configuration, resolved the way getpwnam(3) would, from
// /etc/passwd (Node has no getpwnam).
import { readFileSync } from "node:fs";

export type UserLookup = { ok: true; ids: { uid: number; gid: number } } | { ok: false; error: string };

export function resolveUser(user: string, passwd = "/etc/passwd"): UserLookup {
  if (/^\d+$/.test(user)) return { ok: true, ids: { uid: Number(user), gid: Number(user) } };
  let text: string;
  try {
    text = readFileSync(passwd, "utf8");
  } catch (err) {
    return { ok: false, error: `cannot read ${passwd}: ${(err as Error).message}` };
  }
  for (const line of text.split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (name === user && uid !== undefined && gid !== undefined) {
      return { ok: true, ids: { uid: Number(uid), gid: Number(gid) } };
    }
  }
  return { ok: false, error: `user "${user}" does not exist` };
}
