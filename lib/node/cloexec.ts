// Whether the descriptors the client takes over stay open in the worker's
// child processes. Node cannot set FD_CLOEXEC (no fcntl in its API), but at
// startup it calls libuv's uv_disable_stdio_inheritance(), which marks fds
// 0..15 close-on-exec and goes on up to the first closed descriptor. The
// sd_listen_fds layout vigild and systemd use (3, 4, ... without a gap, the
// protocol socket and heartbeat file right behind) is therefore always
// covered; a descriptor beyond a gap is not, and all the client can do is
// say so.

import fs from "node:fs";
import { writeStderr } from "./stderr.js";

/** O_CLOEXEC as /proc/<pid>/fdinfo/<fd> shows it in `flags:` (octal). */
const O_CLOEXEC = 0o2000000;

/** True/false from /proc/self/fdinfo; undefined where that cannot be read. */
export function closeOnExec(fd: number): boolean | undefined {
  let info: string;
  try {
    info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
  } catch {
    return undefined;
  }
  const flags = /^flags:\s*([0-7]+)$/m.exec(info);
  return flags === null ? undefined : (parseInt(flags[1]!, 8) & O_CLOEXEC) !== 0;
}

/** Says on stderr which of `fds` (what: fd) child processes would inherit. */
export function warnInheritable(fds: ReadonlyArray<{ fd: number; what: string }>): void {
  const open = fds.filter(({ fd }) => closeOnExec(fd) === false);
  if (open.length === 0) return;
  const list = open.map(({ fd, what }) => `fd ${fd} (${what})`).join(", ");
  writeStderr(
    `vigil: ${list} will stay open in child processes: Node marks inherited descriptors close-on-exec ` +
      `only from 3 up to the first gap after 15, and cannot mark them later\n`,
  );
}
