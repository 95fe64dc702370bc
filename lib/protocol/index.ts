// The one definition of the vigil worker protocol (see README.md beside this
// file). vigild and the Node client both import it, so the two sides cannot
// drift apart.

export const MAX_MESSAGE_BYTES = 64 * 1024;
export const MAX_STATUS_CHARS = 1024;
export const STACK_DUMP_SIGNAL = "SIGUSR2" as const;
/** Exit status of a client whose supervisor went away (EX_SOFTWARE). */
export const EXIT_SUPERVISOR_GONE = 70;

export const SHUTDOWN_REASONS = ["stop", "restart", "reload", "recycle", "hang"] as const;
export type ShutdownReason = (typeof SHUTDOWN_REASONS)[number];

export const TEARDOWN_MODES = ["destroy", "skip"] as const;
export type TeardownMode = (typeof TEARDOWN_MODES)[number];

export type WorkerMessage =
  | { type: "hello"; client: string; version: string }
  | { type: "ready" }
  | { type: "status"; text: string }
  | { type: "handlers-done"; timedOut: boolean }
  | { type: "teardown" };

export interface ShutdownMessage {
  type: "shutdown";
  reason: ShutdownReason;
  teardown: TeardownMode;
  handlersTimeoutMs: number;
  deadlineMs: number;
}

export type ParseResult<T> = { ok: true; message: T } | { ok: false; error: string };

export const ENV = {
  fd: "VIGIL_FD",
  program: "VIGIL_PROGRAM",
  worker: "VIGIL_WORKER",
  teardown: "VIGIL_TEARDOWN",
  heartbeatFd: "VIGIL_HEARTBEAT_FD",
  heartbeatSlot: "VIGIL_HEARTBEAT_SLOT",
  heartbeatIntervalMs: "VIGIL_HEARTBEAT_INTERVAL_MS",
} as const;

/** Bytes per heartbeat slot: one little-endian u64 of CLOCK_MONOTONIC ns. */
export const HEARTBEAT_SLOT_BYTES = 8;

type JsonObject = Record<string, unknown>;

function parseObject(line: string): ParseResult<JsonObject> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, error: "not JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, error: "not a JSON object" };
  }
  return { ok: true, message: value as JsonObject };
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

/** Parses one line (without its newline) written by a worker. */
export function parseWorkerMessage(line: string): ParseResult<WorkerMessage> {
  const parsed = parseObject(line);
  if (!parsed.ok) return parsed;
  const obj = parsed.message;
  switch (obj.type) {
    case "hello": {
      const client = typeof obj.client === "string" ? obj.client.slice(0, 64) : "unknown";
      const version = typeof obj.version === "string" ? obj.version.slice(0, 64) : "unknown";
      return { ok: true, message: { type: "hello", client, version } };
    }
    case "ready":
      return { ok: true, message: { type: "ready" } };
    case "status":
      if (typeof obj.text !== "string") return { ok: false, error: "status without a string \"text\"" };
      return { ok: true, message: { type: "status", text: obj.text.slice(0, MAX_STATUS_CHARS) } };
    case "handlers-done":
      return { ok: true, message: { type: "handlers-done", timedOut: obj.timed_out === true } };
    case "teardown":
      return { ok: true, message: { type: "teardown" } };
    default:
      return { ok: false, error: `unknown message type ${describe(obj.type)}` };
  }
}

export function encodeWorkerMessage(message: WorkerMessage): string {
  switch (message.type) {
    case "handlers-done":
      return `${JSON.stringify({ type: message.type, timed_out: message.timedOut })}\n`;
    // Fields already named as on the wire; a new type must choose here.
    case "hello":
    case "ready":
    case "status":
    case "teardown":
      return `${JSON.stringify(message)}\n`;
  }
}

export function encodeShutdown(message: Omit<ShutdownMessage, "type">): string {
  return `${JSON.stringify({
    type: "shutdown",
    reason: message.reason,
    teardown: message.teardown,
    handlers_timeout_ms: Math.max(0, Math.round(message.handlersTimeoutMs)),
    deadline_ms: Math.max(0, Math.round(message.deadlineMs)),
  })}\n`;
}

function isOneOf<T extends string>(values: readonly T[], value: unknown): value is T {
  return typeof value === "string" && (values as readonly string[]).includes(value);
}

/** Parses one line written by vigild (the Node client's side). */
export function parseVigilMessage(line: string): ParseResult<ShutdownMessage> {
  const parsed = parseObject(line);
  if (!parsed.ok) return parsed;
  const obj = parsed.message;
  if (obj.type !== "shutdown") return { ok: false, error: `unknown message type ${describe(obj.type)}` };
  if (!isOneOf(SHUTDOWN_REASONS, obj.reason)) return { ok: false, error: `bad reason ${describe(obj.reason)}` };
  if (!isOneOf(TEARDOWN_MODES, obj.teardown)) return { ok: false, error: `bad teardown ${describe(obj.teardown)}` };
  const handlersTimeoutMs = typeof obj.handlers_timeout_ms === "number" ? obj.handlers_timeout_ms : NaN;
  const deadlineMs = typeof obj.deadline_ms === "number" ? obj.deadline_ms : NaN;
  if (!Number.isFinite(handlersTimeoutMs) || handlersTimeoutMs < 0) return { ok: false, error: "bad handlers_timeout_ms" };
  if (!Number.isFinite(deadlineMs) || deadlineMs < 0) return { ok: false, error: "bad deadline_ms" };
  return {
    ok: true,
    message: { type: "shutdown", reason: obj.reason, teardown: obj.teardown, handlersTimeoutMs, deadlineMs },
  };
}

export type DecodedLine = { kind: "line"; line: string } | { kind: "oversized"; bytes: number };

/**
 * Splits a byte stream into newline-terminated lines of at most `maxBytes`
 * (newline included). An over-long line is reported once, as `oversized`,
 * and skipped up to its newline, so memory stays bounded whatever a peer
 * writes. Bytes are kept as Buffers until a line is complete: a multi-byte
 * UTF-8 character split across reads is decoded whole.
 */
export class LineDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private discarding = 0; // >0: inside an over-long line, bytes dropped so far

  constructor(private readonly maxBytes: number = MAX_MESSAGE_BYTES) {}

  push(chunk: Buffer): DecodedLine[] {
    const out: DecodedLine[] = [];
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (this.discarding > 0) {
        this.discarding += piece.length + (nl === -1 ? 0 : 1);
        if (nl !== -1) {
          out.push({ kind: "oversized", bytes: this.discarding });
          this.discarding = 0;
        }
      } else if (this.pendingBytes + piece.length + 1 > this.maxBytes) {
        // The line cannot fit even with its newline: drop what we hold.
        this.discarding = this.pendingBytes + piece.length + (nl === -1 ? 0 : 1);
        this.pending = [];
        this.pendingBytes = 0;
        if (nl !== -1) {
          out.push({ kind: "oversized", bytes: this.discarding });
          this.discarding = 0;
        }
      } else if (nl === -1) {
        this.pending.push(Buffer.from(piece));
        this.pendingBytes += piece.length;
      } else {
        const whole = this.pending.length === 0 ? piece : Buffer.concat([...this.pending, piece]);
        this.pending = [];
        this.pendingBytes = 0;
        out.push({ kind: "line", line: whole.toString("utf8") });
      }
      if (nl === -1) break;
      start = nl + 1;
    }
    return out;
  }

  /** Bytes of an unfinished line in memory: never more than one message. */
  get heldBytes(): number {
    return this.pendingBytes;
  }

  /** Bytes of an unfinished line seen so far, held or being skipped (for end of stream). */
  get buffered(): number {
    return this.pendingBytes + this.discarding;
  }
}
