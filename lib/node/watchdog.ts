// The vigil Node client's watchdog: a tiny worker thread that watches the
// main thread's heartbeat and, when the event loop has been stuck for
// STALL_INTERVALS heartbeat intervals, prints the main thread's JavaScript
// stack to stderr. A blocked event loop cannot run a SIGUSR2 handler, so this
// is the only way to see *where* a `while (true) {}` is spinning.
//
// How the stack is taken (verified on Node 20): an `inspector.Session`
// opened in this thread with `connectToMainThread()` sends its messages to
// the main thread through V8's interrupt mechanism (RequestInterrupt), which
// V8 services at the next stack-guard check, i.e. inside a busy JavaScript
// loop too (and inside `Atomics.wait`). So `Debugger.enable` +
// `Debugger.pause` stop the spinning code at once, `Debugger.paused` carries
// its call frames, and `Debugger.resume` lets it carry on. A main thread
// stuck in native code (a synchronous child process, a hung synchronous
// file-system call) runs no JavaScript and services no interrupt: the capture
// then gives up (see CAPTURE_TIMEOUT_*) and says so; disconnecting the session
// cancels the pending pause, so the main thread does not stop later.
//
// This module is loaded in two places: by worker.ts in the main thread
// (only for the constants below; it does nothing there) and as the entry
// point of the watchdog thread.

import fs from "node:fs";
import inspector from "node:inspector";
import { isMainThread, workerData } from "node:worker_threads";

/** Indexes into the shared Int32Array. */
export const WD_BEAT = 0; // incremented by the main thread at each heartbeat
export const WD_STOP = 1; // set to 1 by the main thread: the watchdog returns
export const WD_INSPECTOR_BUSY = 2; // 1 while the main thread's inspector is open (inspector.url())
export const WD_SLOTS = 3;

/** The loop counts as blocked after this many heartbeat intervals without a beat. */
export const STALL_INTERVALS = 3;
/**
 * How long the capture waits for the main thread to pause: one heartbeat
 * interval, within these bounds, so the verdict is out before vigild's own
 * hang deadline (4 intervals) even when the pause cannot land.
 */
const CAPTURE_TIMEOUT_MIN_MS = 500;
const CAPTURE_TIMEOUT_MAX_MS = 2000;
const MAX_FRAMES = 64;

export interface WatchdogData {
  vigilWatchdog: true;
  sab: SharedArrayBuffer;
  intervalMs: number;
}

function isWatchdogData(value: unknown): value is WatchdogData {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.vigilWatchdog === true && v.sab instanceof SharedArrayBuffer && typeof v.intervalMs === "number";
}

function nowMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

function writeStderr(text: string): void {
  try {
    fs.writeSync(2, text);
  } catch {
    // stderr gone or would block: nothing better to do from here.
  }
}

function formatFrame(frame: inspector.Debugger.CallFrame, urls: Map<string, string>): string {
  const name = frame.functionName === "" ? "<anonymous>" : frame.functionName;
  // CallFrame.url is deprecated and empty for ES modules: use scriptParsed's.
  const url = urls.get(frame.location.scriptId) || frame.url || `<script ${frame.location.scriptId}>`;
  const line = frame.location.lineNumber + 1;
  const column = (frame.location.columnNumber ?? 0) + 1;
  return `at ${name} (${url}:${line}:${column})`;
}

/** Pauses the main thread through the inspector and returns its frames, or why not. */
function captureMainStack(timeoutMs: number): Promise<{ frames: string[] } | { error: string }> {
  return new Promise((resolve) => {
    let session: inspector.Session;
    try {
      session = new inspector.Session();
      session.connectToMainThread();
    } catch (err) {
      resolve({ error: `inspector unavailable (${err instanceof Error ? err.message : String(err)})` });
      return;
    }
    let done = false;
    const finish = (result: { frames: string[] } | { error: string }): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        session.disconnect();
      } catch {
        // already closed
      }
      resolve(result);
    };
    // A ref'd timer: it bounds the capture and keeps this thread's loop
    // alive while the inspector answers (a pending session keeps nothing alive).
    const timer = setTimeout(
      () =>
        finish({
          error:
            `unavailable: the main thread did not pause within ${timeoutMs} ms ` +
            "(it runs no JavaScript: blocked in native code or a system call)",
        }),
      timeoutMs,
    );
    // Debugger.enable announces every script before it answers.
    const urls = new Map<string, string>();
    session.on("Debugger.scriptParsed", (message) => {
      if (message.params.url !== "") urls.set(message.params.scriptId, message.params.url);
    });
    session.on("Debugger.paused", (message) => {
      if (done) return;
      const frames = message.params.callFrames.slice(0, MAX_FRAMES).map((frame) => formatFrame(frame, urls));
      if (message.params.callFrames.length > MAX_FRAMES) {
        frames.push(`... ${message.params.callFrames.length - MAX_FRAMES} more frames`);
      }
      session.post("Debugger.resume", () => {
        if (done) return;
        session.post("Debugger.disable", () => finish({ frames }));
      });
    });
    session.post("Debugger.enable", (err) => {
      if (done) return;
      if (err) {
        finish({ error: `unavailable (Debugger.enable: ${err.message})` });
        return;
      }
      session.post("Debugger.pause", (err2) => {
        if (err2) finish({ error: `unavailable (Debugger.pause: ${err2.message})` });
      });
    });
  });
}

async function report(blockedMs: number, inspectorBusy: boolean, captureTimeoutMs: number): Promise<void> {
  const head = `vigil: main thread blocked for ${blockedMs} ms, stack:\n`;
  if (inspectorBusy) {
    // A person's debugger may be paused at a breakpoint: our Debugger.resume
    // would resume it. inspector.url() cannot tell whether a client is
    // attached, only that the inspector is open, so stay out entirely.
    writeStderr(`${head}  unavailable: the inspector is open (--inspect); not pausing the main thread behind a debugger\n`);
    return;
  }
  const result = await captureMainStack(captureTimeoutMs);
  if ("frames" in result) {
    const body = result.frames.length === 0 ? ["(no JavaScript frames)"] : result.frames;
    writeStderr(head + body.map((l) => `  ${l}\n`).join(""));
  } else {
    writeStderr(`${head}  ${result.error}\n`);
  }
}

async function run(data: WatchdogData): Promise<void> {
  const shared = new Int32Array(data.sab);
  const stallMs = Math.max(1, STALL_INTERVALS * data.intervalMs);
  const captureTimeoutMs = Math.min(CAPTURE_TIMEOUT_MAX_MS, Math.max(CAPTURE_TIMEOUT_MIN_MS, data.intervalMs));
  let seen = Atomics.load(shared, WD_BEAT);
  let lastBeat = nowMs();
  let reported = false;
  while (Atomics.load(shared, WD_STOP) === 0) {
    // Sleeps until the next beat (or the stop notification). Once a stall is
    // reported, waits without a timeout: one report per stall.
    const timeout = reported ? Infinity : Math.max(1, stallMs - (nowMs() - lastBeat));
    Atomics.wait(shared, WD_BEAT, seen, timeout);
    if (Atomics.load(shared, WD_STOP) !== 0) break;
    const beat = Atomics.load(shared, WD_BEAT);
    if (beat !== seen) {
      seen = beat;
      lastBeat = nowMs();
      reported = false;
      continue;
    }
    const blockedMs = nowMs() - lastBeat;
    if (!reported && blockedMs >= stallMs) {
      reported = true;
      await report(blockedMs, Atomics.load(shared, WD_INSPECTOR_BUSY) !== 0, captureTimeoutMs);
    }
  }
}

if (!isMainThread && isWatchdogData(workerData)) {
  run(workerData).catch((err: unknown) => {
    writeStderr(`vigil: watchdog stopped: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  });
}
