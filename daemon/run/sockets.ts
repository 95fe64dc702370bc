// The listening sockets at start: bound by vigild, or taken from systemd
// (a vigil.socket unit) when it passed them. A socket that cannot be had
// fails the start, with its name, address and reason in STATUS=.
import type { Config } from "../config/types.js";
import type { Logger } from "../log/logger.js";
import { SocketError } from "../sockets/bind.js";
import type { Inherited } from "../sockets/inherited.js";
import { SocketSet } from "../sockets/set.js";
import type { Notifier } from "../systemd/notify.js";

export function openSockets(config: Config, inherited: Inherited | undefined, log: Logger, notifier: Notifier): SocketSet | null {
  if (inherited?.ignored) log.warn(`ignoring sockets from systemd: ${inherited.ignored}`);
  const sockets = new SocketSet(inherited?.byName);
  try {
    const change = sockets.apply(config.sockets);
    for (const note of change.notes) log.info(note);
    for (const warning of change.warnings) log.warn(warning);
  } catch (err) {
    if (!(err instanceof SocketError)) throw err;
    const why = `start failed: ${err.message}`;
    log.error(why, { socket: err.socket, address: err.address });
    // EADDRINUSE's number: systemd shows ERRNO in `systemctl status`.
    notifier.send({ STATUS: why, ERRNO: 98 });
    return null;
  }
  for (const name of inherited?.byName.keys() ?? []) {
    if (!config.sockets.some((s) => s.name === name)) log.warn(`systemd passed a socket named ${name}, which is not under sockets:; ignoring it`);
  }
  return sockets;
}
