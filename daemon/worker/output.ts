// Worker stdout/stderr into vigild's log, one entry per line. A line longer
// than MAX_LINE is cut into pieces rather than buffered without bound.
import type { Readable } from "node:stream";

export const MAX_OUTPUT_LINE = 16 * 1024;

export function forEachLine(stream: Readable, onLine: (line: string) => void): void {
  let pending = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) !== -1) {
      emit(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
    while (pending.length > MAX_OUTPUT_LINE) {
      emit(pending.slice(0, MAX_OUTPUT_LINE));
      pending = pending.slice(MAX_OUTPUT_LINE);
    }
  });
  stream.on("end", () => {
    if (pending.length > 0) emit(pending);
    pending = "";
  });
  // A reset pipe from a killed worker is not vigild's problem.
  stream.on("error", () => undefined);

  function emit(line: string): void {
    onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
  }
}
