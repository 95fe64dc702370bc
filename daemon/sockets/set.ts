// The listening sockets of the running configuration, and the ones a reload
// removed while a worker still has them. A socket is keyed by its address, so
// a reload that renames a socket or changes its backlog keeps the very same
// socket (and the connections queued on it); one that is gone from the
// configuration is closed only when the last worker that holds it has ended.
import { addressKey, formatSocketAddress } from "../config/schema.js";
import type { SocketConfig } from "../config/types.js";
import { bindSockets, relisten, SocketError, type OpenSocket } from "./bind.js";
import { findSocket, socketInode } from "./procfs.js";

interface Entry {
  socket: OpenSocket;
  name: string;
  backlog: number;
  users: number;
  configured: boolean;
}

export interface Lease {
  /** In the order asked for: the worker's fds 3, 4, ... */
  readonly fds: readonly number[];
  readonly names: readonly string[];
  release(): void;
}

export interface SocketQueue {
  socket: string;
  queued: number;
}

export interface SocketChange {
  /** Lines for the log: which sockets were bound, taken from systemd, kept or closed. */
  notes: string[];
  warnings: string[];
}

export class SocketSet {
  private readonly entries = new Map<string, Entry>();

  /** `inherited`: name -> fd of the sockets systemd passed to vigild. */
  constructor(private readonly inherited: ReadonlyMap<string, number> = new Map()) {}

  /**
   * Makes the set match `configs`: binds what is new (throws SocketError,
   * changing nothing, when one cannot be opened), keeps what stays, and
   * closes what is gone unless a worker still holds it.
   */
  apply(configs: readonly SocketConfig[]): SocketChange {
    const change: SocketChange = { notes: [], warnings: [] };
    const fresh: SocketConfig[] = [];
    const taken: OpenSocket[] = [];
    for (const config of configs) {
      if (this.entries.has(addressKey(config.listen))) continue;
      const fd = this.inherited.get(config.name);
      if (fd === undefined) fresh.push(config);
      else taken.push(this.fromSystemd(config, fd, change));
    }
    const bound = bindSockets(fresh);
    const relistened = configs.filter((c) => {
      const entry = this.entries.get(addressKey(c.listen));
      return entry !== undefined && entry.backlog !== c.backlog && !entry.socket.fromSystemd;
    });
    try {
      relisten(relistened.map((c) => ({ fd: this.entries.get(addressKey(c.listen))!.socket.fd, config: c })));
    } catch (err) {
      for (const s of bound) s.close();
      throw err;
    }
    for (const s of [...taken, ...bound]) {
      this.entries.set(addressKey(s.config.listen), { socket: s, name: s.config.name, backlog: s.config.backlog, users: 0, configured: true });
      if (!s.fromSystemd) change.notes.push(`socket ${s.config.name} listening on ${formatSocketAddress(s.config.listen)} (backlog ${s.config.backlog})`);
    }
    const wanted = new Set(configs.map((c) => addressKey(c.listen)));
    for (const config of configs) {
      const entry = this.entries.get(addressKey(config.listen))!;
      entry.name = config.name;
      entry.backlog = config.backlog;
      entry.configured = true;
    }
    for (const [key, entry] of this.entries) {
      if (wanted.has(key)) continue;
      entry.configured = false;
      if (entry.users > 0) change.notes.push(`socket ${entry.name} removed; closing it when its ${entry.users} worker(s) have stopped`);
      this.closeIfUnused(key, entry);
    }
    return change;
  }

  private fromSystemd(config: SocketConfig, fd: number, change: SocketChange): OpenSocket {
    const inode = socketInode(fd);
    const kernel = inode === null ? null : findSocket(inode);
    const want = formatSocketAddress(config.listen);
    if (inode === null) throw new SocketError(config.name, want, `fd ${fd} from systemd (LISTEN_FDNAMES) is not a socket`);
    const got = kernel ? formatSocketAddress(kernel.address) : "an address /proc does not show";
    change.notes.push(`socket ${config.name} taken from systemd (fd ${fd}, ${got})`);
    if (!kernel || addressKey(kernel.address) !== addressKey(config.listen)) {
      change.warnings.push(`socket ${config.name}: systemd's socket listens on ${got}, not on ${want} as sockets.${config.name}.listen says; using systemd's`);
    }
    // systemd keeps the socket open across restarts of vigild: never close it here.
    return { config, fd, fromSystemd: true, close: () => undefined };
  }

  /** The fds of `names` for one worker, held open until release(). */
  acquire(names: readonly string[]): Lease {
    const entries = names.map((name) => {
      const entry = [...this.entries.values()].find((e) => e.configured && e.name === name);
      if (!entry) throw new Error(`no open socket named ${name}`);
      return entry;
    });
    for (const e of entries) e.users++;
    let released = false;
    return {
      fds: entries.map((e) => e.socket.fd),
      names,
      release: () => {
        if (released) return;
        released = true;
        for (const e of entries) {
          e.users--;
          const key = addressKey(e.socket.config.listen);
          if (this.entries.get(key) === e) this.closeIfUnused(key, e);
        }
      },
    };
  }

  private closeIfUnused(key: string, entry: Entry): void {
    if (entry.configured || entry.users > 0) return;
    entry.socket.close();
    this.entries.delete(key);
  }

  /** Accept-queue length of each configured TCP socket, read from the kernel now. */
  queued(): SocketQueue[] {
    const out: SocketQueue[] = [];
    for (const entry of this.entries.values()) {
      if (!entry.configured) continue;
      const inode = socketInode(entry.socket.fd);
      const kernel = inode === null ? null : findSocket(inode);
      if (kernel?.queued != null) out.push({ socket: entry.name, queued: kernel.queued });
    }
    return out;
  }

  close(): void {
    for (const entry of this.entries.values()) entry.socket.close();
    this.entries.clear();
  }
}
