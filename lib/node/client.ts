// The Node client's side of the protocol (lib/protocol/README.md): hello,
// heartbeats, the watchdog thread, the SIGUSR2 dump, and the bounded
// shutdown. worker.ts is the public face of it.
//
// None of the client's handles keeps the process alive: the socket, the
// heartbeat interval and the watchdog thread are unref'd, and the SIGUSR2
// listener is unref'd by Node. The exception is the bounded shutdown itself:
// while handlers run, the handlers timeout is a ref'd timer, so the worker
// always gets to send `handlers-done` (with `timed_out: true` when a handler's
// promise cannot settle any more).

import fs from "node:fs";
import inspector from "node:inspector";
import net from "node:net";
import { Worker, isMainThread } from "node:worker_threads";
import {
  ENV,
  EXIT_SUPERVISOR_GONE,
  HEARTBEAT_SLOT_BYTES,
  LineDecoder,
  MAX_STATUS_CHARS,
  STACK_DUMP_SIGNAL,
  encodeWorkerMessage,
  parseVigilMessage,
  type ShutdownMessage,
  type ShutdownReason,
  type TeardownMode,
  type WorkerMessage,
} from "../protocol/index.js";
import { warnInheritable } from "./cloexec.js";
import { CLIENT_DIR_URL } from "./here.js";
import { formatStackDump } from "./stackdump.js";
import { describeError, writeStderr } from "./stderr.js";
import { CLIENT_NAME, CLIENT_VERSION } from "./version.js";
import { WD_BEAT, WD_INSPECTOR_BUSY, WD_SLOTS, WD_STOP, type WatchdogData } from "./watchdog.js";

export interface ShutdownInfo {
  reason: ShutdownReason;
  teardown: TeardownMode;
  /** Milliseconds, from the receipt of `shutdown`, until vigild SIGKILLs the process group. */
  deadlineMs: number;
}

export type ShutdownHandler = (event: "process_stopping", info: ShutdownInfo) => void | Promise<void>;

/** Used for the watchdog only when vigild passes no heartbeat interval (heartbeats off). */
const DEFAULT_WATCHDOG_INTERVAL_MS = 1000;
/** In the skip path, exit even if the last write never completes. */
const SKIP_EXIT_FALLBACK_MS = 250;

export function parseNonNegativeInt(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text.trim())) return undefined;
  const n = Number(text.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

type Phase = "running" | "handlers" | "exiting" | "teardown";

interface Heartbeat {
  fd: number;
  position: number;
  buffer: Buffer;
}

export class Client {
  private readonly socket: net.Socket;
  private readonly decoder = new LineDecoder();
  private readonly handlers: ShutdownHandler[] = [];
  private readonly heartbeat: Heartbeat | undefined;
  private readonly interval: NodeJS.Timeout;
  private readonly shared: Int32Array | undefined;
  private watchdog: Worker | undefined;
  private phase: Phase = "running";
  private readySent = false;
  /** The latest status() while the socket is over its high-water mark. */
  private pendingStatus: string | undefined;
  private heartbeatFailed = false;

  constructor(fd: number, heartbeatFd: number | undefined, slot: number | undefined, intervalMs: number) {
    this.socket = new net.Socket({ fd, readable: true, writable: true });
    this.socket.unref();
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.socket.on("end", () => this.supervisorGone());
    this.socket.on("error", () => this.supervisorGone());
    this.send({ type: "hello", client: CLIENT_NAME, version: CLIENT_VERSION });

    if (heartbeatFd !== undefined && slot !== undefined) {
      this.heartbeat = { fd: heartbeatFd, position: slot * HEARTBEAT_SLOT_BYTES, buffer: Buffer.alloc(HEARTBEAT_SLOT_BYTES) };
    }
    if (typeof SharedArrayBuffer === "function") {
      this.shared = new Int32Array(new SharedArrayBuffer(WD_SLOTS * Int32Array.BYTES_PER_ELEMENT));
    }
    this.beat();
    this.interval = setInterval(() => this.beat(), intervalMs);
    this.interval.unref();
    this.startWatchdog(intervalMs);
    process.on(STACK_DUMP_SIGNAL, () => writeStderr(formatStackDump()));
  }

  private startWatchdog(intervalMs: number): void {
    if (this.shared === undefined) return;
    const data: WatchdogData = { vigilWatchdog: true, sab: this.shared.buffer as SharedArrayBuffer, intervalMs };
    try {
      const worker = new Worker(new URL("./watchdog.js", CLIENT_DIR_URL), {
        workerData: data,
        name: "vigil-watchdog",
        // Not the app's preloads (--require/--import) nor its flags.
        execArgv: [],
        stdin: false,
        resourceLimits: { maxOldGenerationSizeMb: 64 },
      });
      worker.unref();
      // An unhandled 'error' on a Worker would crash the app: report it instead.
      worker.on("error", (err) => writeStderr(`vigil: watchdog failed: ${describeError(err)}\n`));
      worker.on("exit", () => {
        if (this.watchdog === worker) this.watchdog = undefined;
      });
      this.watchdog = worker;
    } catch (err) {
      writeStderr(`vigil: watchdog not started: ${describeError(err)}\n`);
    }
  }

  private stopWatchdog(): void {
    if (this.shared !== undefined) {
      Atomics.store(this.shared, WD_STOP, 1);
      Atomics.notify(this.shared, WD_BEAT);
    }
    // The thread returns by itself on the stop flag; it is unref'd either way.
    this.watchdog = undefined;
  }

  private beat(): void {
    const hb = this.heartbeat;
    if (hb !== undefined && !this.heartbeatFailed) {
      hb.buffer.writeBigUInt64LE(process.hrtime.bigint());
      try {
        fs.writeSync(hb.fd, hb.buffer, 0, HEARTBEAT_SLOT_BYTES, hb.position); // one pwrite
      } catch (err) {
        this.heartbeatFailed = true;
        writeStderr(`vigil: heartbeat write failed, heartbeats stop: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
    if (this.shared !== undefined) {
      Atomics.store(this.shared, WD_INSPECTOR_BUSY, inspector.url() === undefined ? 0 : 1);
      Atomics.add(this.shared, WD_BEAT, 1);
      Atomics.notify(this.shared, WD_BEAT);
    }
  }

  send(message: WorkerMessage, done?: (err?: Error | null) => void): void {
    if (this.socket.destroyed || !this.socket.writable) {
      done?.(new Error("socket closed"));
      return;
    }
    this.socket.write(encodeWorkerMessage(message), done);
  }

  ready(): void {
    if (this.readySent || this.phase === "teardown") return;
    this.readySent = true;
    this.send({ type: "ready" });
  }

  status(text: string): void {
    if (this.phase === "teardown" || this.phase === "exiting") return;
    const clipped = String(text).slice(0, MAX_STATUS_CHARS);
    // While vigild does not read (stopped, or its loop busy), Node's socket
    // would queue every write in memory without limit. A status only matters
    // as the latest one, so past the socket's high-water mark just the latest
    // waits, and goes out when the socket drains.
    if (this.socket.writableNeedDrain) {
      if (this.pendingStatus === undefined) this.socket.once("drain", () => this.flushStatus());
      this.pendingStatus = clipped;
      return;
    }
    this.send({ type: "status", text: clipped });
  }

  private flushStatus(): void {
    const text = this.pendingStatus;
    this.pendingStatus = undefined;
    if (text !== undefined) this.status(text);
  }

  /** Returns the function that removes this subscription (not a run already begun). */
  subscribe(handler: ShutdownHandler): () => void {
    if (typeof handler !== "function") throw new TypeError("vigil: subscribeShutdown needs a function");
    // A wrapper of its own, so that unsubscribing removes this subscription
    // only, even when the same function was subscribed twice.
    const entry: ShutdownHandler = (event, info) => handler(event, info);
    this.handlers.push(entry);
    return () => {
      const at = this.handlers.indexOf(entry);
      if (at >= 0) this.handlers.splice(at, 1);
    };
  }

  private onData(chunk: Buffer): void {
    for (const decoded of this.decoder.push(chunk)) {
      if (decoded.kind === "oversized") {
        writeStderr(`vigil: protocol error from supervisor: line of ${decoded.bytes} bytes ignored\n`);
        continue;
      }
      const parsed = parseVigilMessage(decoded.line);
      if (!parsed.ok) {
        writeStderr(`vigil: protocol error from supervisor: ${parsed.error}\n`);
        continue;
      }
      void this.onShutdown(parsed.message);
    }
  }

  private supervisorGone(): void {
    // In teardown the socket is ours to close; while exiting we leave anyway.
    if (this.phase === "teardown" || this.phase === "exiting") return;
    this.phase = "exiting";
    writeStderr("vigil: supervisor gone, exiting\n");
    process.exit(EXIT_SUPERVISOR_GONE);
  }

  /**
   * Calls every handler at once, in subscription order, and waits for all of
   * them (in parallel) for at most handlersTimeoutMs. Returns true on timeout.
   */
  private async runHandlers(info: ShutdownInfo, timeoutMs: number): Promise<boolean> {
    const runs = this.handlers.map(async (handler) => {
      try {
        await handler("process_stopping", { ...info });
      } catch (err) {
        writeStderr(`vigil: shutdown handler failed: ${describeError(err)}\n`);
      }
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs); // ref'd on purpose, see the top
    });
    try {
      return await Promise.race([Promise.all(runs).then(() => false), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async onShutdown(message: ShutdownMessage): Promise<void> {
    if (this.phase !== "running") return; // one shutdown is enough
    this.phase = "handlers";
    const info: ShutdownInfo = { reason: message.reason, teardown: message.teardown, deadlineMs: message.deadlineMs };
    const timedOut = await this.runHandlers(info, message.handlersTimeoutMs);
    if (this.phase !== "handlers") return; // supervisor gone meanwhile
    if (message.teardown === "skip") {
      this.phase = "exiting";
      const exit = (): void => process.exit(0);
      setTimeout(exit, SKIP_EXIT_FALLBACK_MS).unref();
      this.send({ type: "handlers-done", timedOut }, exit);
      return;
    }
    this.send({ type: "handlers-done", timedOut });
    this.send({ type: "teardown" });
    this.phase = "teardown";
    this.detach();
  }

  /** Closes every handle of the client so that the event loop can drain. */
  private detach(): void {
    clearInterval(this.interval);
    this.stopWatchdog();
    // end() flushes what is queued, then we drop the descriptor.
    this.socket.end(() => this.socket.destroy());
  }
}

const CLIENT_KEY = Symbol.for("vigil.worker.client");
type ClientHolder = { [CLIENT_KEY]?: Client };

/** Attaches when VIGIL_FD is set (once per process, on the main thread). */
export function attach(): Client | undefined {
  // A second copy of this module (two installs, or ESM and CJS) shares the client.
  const holder = globalThis as ClientHolder;
  const existing = holder[CLIENT_KEY];
  if (existing !== undefined) return existing;
  if (!isMainThread) return undefined; // worker threads of the app do not attach
  const fd = parseNonNegativeInt(process.env[ENV.fd]);
  if (fd === undefined) return undefined;
  try {
    if (!fs.fstatSync(fd).isSocket()) {
      writeStderr(`vigil: ${ENV.fd}=${fd} is not a socket, not attaching\n`);
      return undefined;
    }
  } catch (err) {
    writeStderr(`vigil: ${ENV.fd}=${fd} unusable (${err instanceof Error ? err.message : String(err)}), not attaching\n`);
    return undefined;
  }
  const heartbeatFd = parseNonNegativeInt(process.env[ENV.heartbeatFd]);
  const slot = parseNonNegativeInt(process.env[ENV.heartbeatSlot]);
  const interval = parseNonNegativeInt(process.env[ENV.heartbeatIntervalMs]);
  const intervalMs = interval !== undefined && interval > 0 ? interval : DEFAULT_WATCHDOG_INTERVAL_MS;
  // The descriptors are ours now: child processes (cluster.fork, a spawned
  // node) inherit the descriptors but must not attach to them too.
  for (const name of [ENV.fd, ENV.heartbeatFd, ENV.heartbeatSlot, ENV.heartbeatIntervalMs]) delete process.env[name];
  warnInheritable([
    { fd, what: ENV.fd },
    ...(heartbeatFd !== undefined ? [{ fd: heartbeatFd, what: ENV.heartbeatFd }] : []),
  ]);
  const client = new Client(fd, heartbeatFd, slot, intervalMs);
  holder[CLIENT_KEY] = client;
  return client;
}
