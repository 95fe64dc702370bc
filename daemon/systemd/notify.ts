// sd_notify(3) through the sd-notify package (libsystemd). Outside systemd
// (no NOTIFY_SOCKET) libsystemd sends nothing, so callers need no check.
import { createRequire } from "node:module";

interface SdNotifyNative {
  sendState(state: string): void;
  /** WATCHDOG_USEC / 1000 when the watchdog is enabled for this pid (WATCHDOG_PID honoured), else 0. */
  watchdogInterval(): number;
}

export interface Notifier {
  send(fields: Record<string, string | number>): void;
  /** The watchdog interval in ms, or null when systemd does not watch vigild. */
  watchdogMs(): number | null;
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ").slice(0, 1000);
}

/** Renders sd_notify assignments; STATUS= is kept to one line. */
export function renderState(fields: Record<string, string | number>): string {
  return Object.entries(fields)
    .map(([key, value]) => `${key}=${key === "STATUS" ? oneLine(String(value)) : String(value)}`)
    .join("\n");
}

export function systemdNotifier(): Notifier {
  const require = createRequire(import.meta.url);
  const native = require("sd-notify") as SdNotifyNative;
  return {
    send: (fields) => native.sendState(renderState(fields)),
    watchdogMs: () => {
      const ms = native.watchdogInterval();
      return ms > 0 ? ms : null;
    },
  };
}
