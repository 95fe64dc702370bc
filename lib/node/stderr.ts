// How the Node client reports: straight to fd 2, whatever the application
// did to process.stderr, and from any phase (signal handler, exit path).

import fs from "node:fs";

export function writeStderr(text: string): void {
  try {
    fs.writeSync(2, text);
  } catch {
    try {
      process.stderr.write(text);
    } catch {
      // no stderr: nothing to report to
    }
  }
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}
