// Binding the listening sockets vigild hands to workers. vigild must hold a
// listening socket it never accepts on: the workers accept, and while none
// does (an `instances: 1` restart) connections wait in the kernel's queue.
// Node has no listen() that does not also start accepting, so vigild binds
// with Node's own server-handle constructor (the one cluster uses) and has a
// one-line perl (perl-base is Essential on Debian) call listen(2) on the same
// open socket: listening is a property of the socket, not of the process.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import util from "node:util";
import type { SocketConfig } from "../config/types.js";
import { formatSocketAddress } from "../config/schema.js";

interface ServerHandle {
  readonly fd: number;
  getsockname?(out: { address?: string; port?: number }): number;
  close(): void;
}

type CreateServerHandle = (address: string | null, port: number, addressType: number, fd?: number, flags?: number) => ServerHandle | number;

const createServerHandle = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle;

export interface OpenSocket {
  readonly config: SocketConfig;
  readonly fd: number;
  readonly fromSystemd: boolean;
  close(): void;
}

/** A socket that could not be opened: its name, its address and why, for STATUS= and the journal. */
export class SocketError extends Error {
  constructor(
    readonly socket: string,
    readonly address: string,
    readonly reason: string,
  ) {
    super(`socket ${socket} (${address}): ${reason}`);
    this.name = "SocketError";
  }
}

/** "address already in use (EADDRINUSE)" from libuv's negative errno. */
function errnoText(errno: number): string {
  const [name, message] = util.getSystemErrorMap().get(errno) ?? [String(errno), "error"];
  return `${message.toLowerCase()} (${name})`;
}

/** Binds every socket and makes it listen; on any failure closes what it opened and throws SocketError. */
export function bindSockets(configs: readonly SocketConfig[]): OpenSocket[] {
  const opened: OpenSocket[] = [];
  try {
    for (const config of configs) opened.push(bindOne(config));
    listenAll(opened);
    return opened;
  } catch (err) {
    for (const s of opened) s.close();
    throw err;
  }
}

function bindOne(config: SocketConfig): OpenSocket {
  const address = formatSocketAddress(config.listen);
  const fail = (reason: string): never => {
    throw new SocketError(config.name, address, reason);
  };
  let handle: ServerHandle | number;
  const listen = config.listen;
  if (listen.kind === "unix") {
    removeStaleSocket(listen.path, fail);
    handle = createServerHandle(listen.path, -1, -1);
  } else {
    handle = createServerHandle(listen.host, listen.port, net.isIPv6(listen.host) ? 6 : 4);
  }
  if (typeof handle === "number") return fail(`cannot bind: ${errnoText(handle)}`);
  const h = handle;
  if (listen.kind === "tcp" && h.getsockname) {
    // libuv defers EADDRINUSE from bind(2) to listen(2): an unbound socket
    // would then listen on a random port. An unbound socket has port 0.
    const out: { port?: number } = {};
    if (h.getsockname(out) !== 0 || out.port === 0) {
      h.close();
      return fail(`cannot bind: ${errnoText(-os.constants.errno.EADDRINUSE)}`);
    }
  }
  return {
    config,
    fd: h.fd,
    fromSystemd: false,
    close: () => {
      h.close();
      if (listen.kind === "unix") fs.rmSync(listen.path, { force: true });
    },
  };
}

/** As systemd does for ListenStream= paths: a socket file left by an earlier run is replaced. */
function removeStaleSocket(file: string, fail: (reason: string) => never): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return;
  }
  if (!st.isSocket()) fail(`cannot bind: ${file} exists and is not a socket`);
  fs.rmSync(file, { force: true });
}

const LISTEN_SCRIPT = 'for (@ARGV) { my ($fd, $backlog) = split /:/; open(my $s, "+<&=", $fd) or die "$fd:$!\\n"; listen($s, $backlog) or die "$fd:$!\\n"; }';

/** listen(2) again on open sockets, e.g. with a new backlog (the queue is kept). */
export function relisten(sockets: ReadonlyArray<{ fd: number; config: SocketConfig }>): void {
  listenAll(sockets);
}

function listenAll(sockets: ReadonlyArray<{ fd: number; config: SocketConfig }>): void {
  if (sockets.length === 0) return;
  // The child gets the sockets on fds 3, 4, ...; stderr carries "fd:reason" of a failure.
  const result = spawnSync("perl", ["-e", LISTEN_SCRIPT, ...sockets.map((s, i) => `${3 + i}:${s.config.backlog}`)], {
    stdio: ["ignore", "ignore", "pipe", ...sockets.map((s) => s.fd)],
    encoding: "utf8",
    env: { PATH: "/usr/bin:/bin" },
  });
  if (result.status === 0) return;
  const [fd, reason] = (result.stderr ?? "").trim().split(":", 2);
  const failed = sockets[Number(fd) - 3] ?? sockets[0]!;
  const why = result.error ? `cannot run perl to listen: ${result.error.message}` : `cannot listen: ${(reason ?? result.stderr ?? "").toLowerCase()}`;
  throw new SocketError(failed.config.name, formatSocketAddress(failed.config.listen), why);
}
