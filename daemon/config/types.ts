// The validated, frozen configuration that the rest of vigild reads. All
// durations are in milliseconds, all sizes in bytes; loading turns the YAML's
// strings ("250ms", "512MiB") into these once, so no other module parses.
import type { ProtocolMode, RestartPolicy, TeardownSetting } from "../core/vocabulary.js";

export type { ProtocolMode, RestartPolicy, TeardownSetting };

export type LogLevel = "error" | "warn" | "info" | "debug";
export type LogFormat = "auto" | "journal" | "json" | "text";
export type BusChoice = "auto" | "system" | "session" | "none";

export interface ListenAddress {
  host: string;
  port: number;
}

/** Where a socket under `sockets:` listens: TCP (IPv4, or IPv6 with "[...]") or a unix stream socket. */
export type SocketAddress = { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string };

export interface SocketConfig {
  name: string;
  listen: SocketAddress;
  backlog: number;
}

export interface RestartConfig {
  policy: RestartPolicy;
  backoffInitialMs: number;
  backoffMaxMs: number;
  limit: { count: number; windowMs: number };
}

export interface ShutdownConfig {
  signal: NodeJS.Signals;
  handlersTimeoutMs: number;
  teardown: TeardownSetting;
  teardownHangAfterMs: number;
  timeoutMs: number;
}

export interface ProgramConfig {
  name: string;
  command: readonly string[];
  instances: number;
  cwd: string | null;
  env: Readonly<Record<string, string>>;
  user: string | null;
  protocol: ProtocolMode;
  /** Names under `sockets:`, handed over as fds 3, 4, ... in this order. */
  sockets: readonly string[];
  readyTimeoutMs: number;
  /** 0 disables steady-state hang detection. */
  heartbeatTimeoutMs: number;
  stackDumpGraceMs: number;
  restart: RestartConfig;
  recycle: { maxAgeMs: number; maxMemoryBytes: number };
  shutdown: ShutdownConfig;
}

export interface Config {
  /** Absolute path of the file this came from. */
  file: string;
  metrics: { listen: ListenAddress | null };
  log: { level: LogLevel; format: LogFormat };
  dbus: { bus: BusChoice };
  watchdog: { maxLoopLagMs: number };
  stateDir: string;
  /** In the order the file lists them. */
  sockets: readonly SocketConfig[];
  /** In the order the file lists them. */
  programs: readonly ProgramConfig[];
}
