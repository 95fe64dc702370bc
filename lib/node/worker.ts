// The vigil worker client for Node (`import { ready } from "vigil/worker"`),
// its public API. The wire protocol is lib/protocol/README.md; client.ts is
// its Node side, listen.ts the sd_listen_fds(3) sockets.
//
// Importing this module attaches to vigild when VIGIL_FD is set (and we are
// on the main thread): it says `hello`, writes a first heartbeat, starts the
// heartbeat interval, the SIGUSR2 stack dump and the watchdog thread, and
// reads `shutdown` from the socket. Without VIGIL_FD every call is a no-op,
// except listenFds(), which works the same with or without vigild.

import { ENV } from "../protocol/index.js";
import { attach, parseNonNegativeInt, type ShutdownHandler } from "./client.js";
import { takeListenFds } from "./listen.js";

export type { ShutdownReason, TeardownMode } from "../protocol/index.js";
export type { ShutdownHandler, ShutdownInfo } from "./client.js";
export { CLIENT_NAME, CLIENT_VERSION } from "./version.js";
export { formatStackDump } from "./stackdump.js";

const client = attach();

/** True when this process is attached to vigild. */
export const attached: boolean = client !== undefined;
/** The program's name from vigild's configuration (VIGIL_PROGRAM), if any. */
export const program: string | undefined = process.env[ENV.program];
/** This worker's 0-based instance number (VIGIL_WORKER), if any. */
export const worker: number | undefined = parseNonNegativeInt(process.env[ENV.worker]);

/** Tells vigild the worker can do its job (sent once; outside vigil a no-op). */
export function ready(): void {
  client?.ready();
}

/**
 * Free text for `vigilctl status` (at most 1024 characters are kept; outside
 * vigil a no-op). While vigild does not read its socket, only the latest text
 * waits in memory.
 */
export function status(text: string): void {
  client?.status(text);
}

/**
 * Subscribes a handler to `shutdown`. All handlers are called at once, in
 * subscription order, and run in parallel; vigil waits for all of them for at
 * most `handlers_timeout_ms`. A handler that throws or rejects is reported on
 * stderr and does not stop the others. Handlers subscribed after the shutdown
 * began are not called. Returns the function that unsubscribes it. Outside
 * vigil the handler is never called.
 */
export function subscribeShutdown(handler: ShutdownHandler): () => void {
  if (client === undefined) return () => {};
  return client.subscribe(handler);
}

/**
 * The listening sockets passed by sd_listen_fds(3)'s rules (a program's
 * `sockets:` in vigild, or systemd socket activation), as name -> fd, ready
 * for `server.listen({ fd })`. Empty unless LISTEN_PID is this process's pid.
 * A socket without a name is "unknown" (systemd's default); a name that
 * repeats gets ":2", ":3", ... from its second fd on. The first call removes
 * LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from process.env, so child
 * processes do not mistake them; later calls return the same fds. Works the
 * same with or without vigild.
 */
export function listenFds(): Record<string, number> {
  return takeListenFds();
}
