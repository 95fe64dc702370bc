// What the kernel says about one of vigild's listening sockets, found by its
// inode in /proc/net/{tcp,tcp6,unix}: where it listens and, for TCP, how many
// connections wait in its accept queue. Node cannot getsockname() a bare fd,
// and this answers for sockets systemd passed in as well as ours.
import fs from "node:fs";
import os from "node:os";
import type { SocketAddress } from "../config/types.js";

export interface KernelSocket {
  address: SocketAddress;
  listening: boolean;
  /** Connections waiting to be accepted; null where Linux does not report it (unix sockets). */
  queued: number | null;
}

const TCP_LISTEN = 0x0a;
const UNIX_LISTENING = 0x00010000;

/** The inode of the socket open on `fd` in this process, or null when it is not a socket. */
export function socketInode(fd: number, procRoot = "/proc"): string | null {
  try {
    const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`${procRoot}/self/fd/${fd}`));
    return match ? match[1]! : null;
  } catch {
    return null;
  }
}

export function findSocket(inode: string, procRoot = "/proc"): KernelSocket | null {
  for (const file of ["tcp", "tcp6"]) {
    const found = scanTcp(read(`${procRoot}/net/${file}`), inode);
    if (found) return found;
  }
  return scanUnix(read(`${procRoot}/net/unix`), inode);
}

function read(file: string): string {
  try {
    return fs.readFileSync(file, "latin1");
  } catch {
    return "";
  }
}

export function scanTcp(table: string, inode: string): KernelSocket | null {
  for (const line of table.split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[9] !== inode) continue;
    const [addrHex, portHex] = (cols[1] ?? "").split(":");
    const queues = (cols[4] ?? "").split(":");
    const listening = parseInt(cols[3] ?? "", 16) === TCP_LISTEN;
    return {
      address: { kind: "tcp", host: hexAddress(addrHex ?? ""), port: parseInt(portHex ?? "0", 16) },
      listening,
      // For a listening socket the kernel puts the accept queue's length in
      // rx_queue. Its capacity is not there (only netlink's inet_diag has it).
      queued: listening ? parseInt(queues[1] ?? "0", 16) : null,
    };
  }
  return null;
}

export function scanUnix(table: string, inode: string): KernelSocket | null {
  for (const line of table.split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[6] !== inode) continue;
    return {
      address: { kind: "unix", path: cols[7] ?? "" },
      listening: (parseInt(cols[3] ?? "0", 16) & UNIX_LISTENING) !== 0,
      queued: null,
    };
  }
  return null;
}

/** /proc/net prints each 32-bit word of an address in the host's byte order. */
function hexAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => {
    if (os.endianness() === "LE") bytes.writeUInt32LE(parseInt(w, 16), i * 4);
    else bytes.writeUInt32BE(parseInt(w, 16), i * 4);
  });
  if (bytes.length === 4) return [...bytes].join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return compressV6(groups);
}

function compressV6(groups: string[]): string {
  if (groups.slice(0, 5).every((g) => g === "0") && groups[5] === "ffff") {
    const v4 = groups.slice(6).flatMap((g) => {
      const n = parseInt(g, 16);
      return [n >> 8, n & 0xff];
    });
    return `::ffff:${v4.join(".")}`;
  }
  let best = { at: -1, len: 0 };
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === "0") j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j;
  }
  if (best.len < 2) return groups.join(":");
  return `${groups.slice(0, best.at).join(":")}::${groups.slice(best.at + best.len).join(":")}`;
}
