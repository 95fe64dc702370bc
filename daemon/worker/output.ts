// A worker's stdout and stderr into vigild's log, one entry per line, within
// a fixed budget. vigild holds at most OUTPUT_BUDGET_BYTES of one worker's
// output that its log has not yet taken; past that, what the worker writes is
// dropped with a count, and its pipe is read only every DROP_PAUSE_MS: a
// worker that prints faster than the log drains costs vigild bounded memory
// and almost no CPU, and is slowed (as a service writing to a slow journal
// is) but never blocked for long enough to miss a heartbeat. (Under journald
// vigild is not in this path at all: see journal.ts.)
import type { Readable } from "node:stream";

export const OUTPUT_BUDGET_BYTES = 1024 * 1024;
/** A longer line is cut into pieces rather than buffered without bound. */
export const MAX_OUTPUT_LINE = 16 * 1024;
/** While dropping, the pipe rests this long after each chunk dropped. */
export const DROP_PAUSE_MS = 50;

export type OutputStream = "stdout" | "stderr";

export interface OutputLine {
  stream: OutputStream;
  text: string;
  /** syslog priority from a "<N>" prefix (sd-daemon(3)), null when the line has none. */
  priority: number | null;
}

export interface OutputSink {
  /** Writes the lines of one read, in one write; `taken` runs once the log's reader has them. */
  lines(lines: readonly OutputLine[], taken: () => void): void;
  /** `bytes` of output were dropped; `first` marks the start of an episode. */
  dropped(bytes: number, first: boolean): void;
}

const LEVEL_PREFIX = /^<([0-7])>/;

export function parseLevelPrefix(text: string): { text: string; priority: number | null } {
  const match = LEVEL_PREFIX.exec(text);
  return match ? { text: text.slice(3), priority: Number(match[1]) } : { text, priority: null };
}

/** One worker's output budget, shared by its stdout and stderr. */
export class WorkerOutput {
  private held = 0;
  private dropping = false;

  constructor(
    private readonly sink: OutputSink,
    /** Runs `fn` after `ms` (the clock's timer, so tests can drive it). */
    private readonly later: (ms: number, fn: () => void) => void,
    private readonly budget = OUTPUT_BUDGET_BYTES,
  ) {}

  /** Bytes of this worker's output that vigild holds now. */
  get heldBytes(): number {
    return this.held;
  }

  attach(stream: Readable, name: OutputStream): void {
    let pending: Buffer = Buffer.alloc(0);
    // The lines of one read go out in one write: per-line writes would cost
    // a request and a callback each, which a flood turns into garbage.
    const flush = (batch: OutputLine[], bytes: number): void => {
      if (batch.length === 0) return;
      this.held += bytes;
      this.sink.lines(batch, () => {
        this.held -= bytes;
      });
    };
    const fromText = (raw: string): OutputLine => {
      const trimmed = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      // Most lines have no "<N>" prefix: no regular expression for them.
      const { text, priority } = trimmed.charCodeAt(0) === 0x3c ? parseLevelPrefix(trimmed) : { text: trimmed, priority: null };
      return { stream: name, text, priority };
    };
    const line = (buf: Buffer): OutputLine => fromText(buf.toString("utf8"));
    stream.on("data", (chunk: Buffer) => {
      if (!this.admit(chunk.length)) {
        // What was pending is cut off from its end: say it as it is, then drop.
        if (pending.length > 0) flush([line(pending)], pending.length);
        pending = Buffer.alloc(0);
        stream.pause();
        this.later(DROP_PAUSE_MS, () => stream.resume());
        return;
      }
      let data = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
      const batch: OutputLine[] = [];
      let bytes = 0;
      const last = data.lastIndexOf(0x0a);
      if (last !== -1) {
        // The complete lines decoded at once: a newline is never inside a
        // UTF-8 sequence, so this reads each line as decoding it alone would.
        const texts = data.toString("utf8", 0, last).split("\n");
        for (const text of texts) batch.push(fromText(text));
        bytes = last + 1 - texts.length;
        data = data.subarray(last + 1);
      }
      while (data.length > MAX_OUTPUT_LINE) {
        batch.push(line(data.subarray(0, MAX_OUTPUT_LINE)));
        bytes += MAX_OUTPUT_LINE;
        data = data.subarray(MAX_OUTPUT_LINE);
      }
      flush(batch, bytes);
      // A copy: a small tail must not keep a whole 64 KiB chunk alive.
      pending = Buffer.from(data);
    });
    stream.on("end", () => {
      if (pending.length > 0) flush([line(pending)], pending.length);
      pending = Buffer.alloc(0);
    });
    // A reset pipe from a killed worker is not vigild's problem.
    stream.on("error", () => undefined);
  }

  /**
   * Whether a chunk of `bytes` fits. Once dropping, the log must first drain
   * to half the budget, so one episode is one log line, not one per chunk.
   */
  private admit(bytes: number): boolean {
    const limit = this.dropping ? this.budget / 2 : this.budget;
    if (this.held + bytes <= limit) {
      this.dropping = false;
      return true;
    }
    this.sink.dropped(bytes, !this.dropping);
    this.dropping = true;
    return false;
  }
}
