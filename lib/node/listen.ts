// Listening sockets passed by sd_listen_fds(3)'s rules, by vigild (a
// program's `sockets:`) or by systemd socket activation alike: fds 3, 4, ...
// with LISTEN_FDS, LISTEN_FDNAMES (':'-joined) and LISTEN_PID.

import { warnInheritable } from "./cloexec.js";
import { writeStderr } from "./stderr.js";

export const SD_LISTEN_FDS_START = 3;
export const LISTEN_ENV = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] as const;
/** systemd's name for a socket without FileDescriptorName=. */
export const DEFAULT_SOCKET_NAME = "unknown";

export type ListenEnv = Partial<Record<(typeof LISTEN_ENV)[number], string>>;

export interface ListenFds {
  /** name -> fd, in fd order. */
  fds: Record<string, number>;
  /** Why the variables were ignored, when they are malformed. */
  warning?: string;
}

function parseCount(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * What sd_listen_fds_with_names() would return for `env` in process `pid`.
 * Not this process's (LISTEN_PID differs) or nothing passed: empty. A name
 * that repeats gets ":2", ":3", ... from its second fd on (a name cannot
 * hold ':', so no real name is shadowed).
 */
export function parseListenEnv(env: ListenEnv, pid: number): ListenFds {
  const { LISTEN_PID: pidText, LISTEN_FDS: countText, LISTEN_FDNAMES: namesText } = env;
  if (pidText === undefined || countText === undefined) return { fds: {} };
  const listenPid = parseCount(pidText);
  const count = parseCount(countText);
  if (listenPid === undefined || count === undefined) {
    return { fds: {}, warning: `LISTEN_PID=${JSON.stringify(pidText)} LISTEN_FDS=${JSON.stringify(countText)} are not numbers, ignoring them` };
  }
  if (listenPid !== pid || count === 0) return { fds: {} };
  let names = namesText === undefined || namesText === "" ? [] : namesText.split(":");
  if (names.length === 0) names = Array.from({ length: count }, () => DEFAULT_SOCKET_NAME);
  if (names.length !== count) {
    return { fds: {}, warning: `LISTEN_FDNAMES has ${names.length} names for LISTEN_FDS=${count}, ignoring the sockets` };
  }
  const seen = new Map<string, number>();
  const entries = names.map((name, i): [string, number] => {
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    return [n === 1 ? name : `${name}:${n}`, SD_LISTEN_FDS_START + i];
  });
  return { fds: Object.fromEntries(entries) };
}

// Shared by every copy of this module (two installs, ESM and CJS): the first
// call removes the variables, so a later copy could not read them again.
const CACHE_KEY = Symbol.for("vigil.worker.listenFds");
type CacheHolder = { [CACHE_KEY]?: Record<string, number> };

/** Takes the descriptors once: reads and removes the variables, caches the result. */
export function takeListenFds(): Record<string, number> {
  const holder = globalThis as CacheHolder;
  let fds = holder[CACHE_KEY];
  if (fds === undefined) {
    const env: ListenEnv = {};
    for (const name of LISTEN_ENV) {
      const value = process.env[name];
      if (value !== undefined) env[name] = value;
      // As sd_listen_fds(unset_environment=1): child processes must not mistake them.
      delete process.env[name];
    }
    const parsed = parseListenEnv(env, process.pid);
    if (parsed.warning !== undefined) writeStderr(`vigil: ${parsed.warning}\n`);
    fds = parsed.fds;
    holder[CACHE_KEY] = fds;
    warnInheritable(Object.entries(fds).map(([name, fd]) => ({ fd, what: `listening socket ${name}` })));
  }
  return { ...fds };
}
