// Debian's wrk as the load generator of the socket tests. `Connection: close`
// makes every request a new connection, so a request that meets no accepting
// worker shows up as a socket error (wrk counts a connection closed between
// keep-alive requests as an error too, which would hide the difference).
import { expect } from "chai";
import { spawn } from "node:child_process";

export interface WrkResult {
  requests: number;
  /** connect + read + write + timeout errors. */
  socketErrors: number;
  non2xx: number;
  p99Ms: number | null;
  output: string;
}

export function parseWrk(output: string): WrkResult {
  const requests = Number(/(\d+) requests in/.exec(output)?.[1] ?? NaN);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = errors ? errors.slice(1).reduce((n, v) => n + Number(v), 0) : 0;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(output);
  const scale = { us: 0.001, ms: 1, s: 1000 } as const;
  const p99Ms = p99 ? Number(p99[1]) * scale[p99[2] as keyof typeof scale] : null;
  return { requests, socketErrors, non2xx, p99Ms, output };
}

/** Runs wrk for `seconds` against `url`; resolves with its figures. Bounded: wrk stops by itself. */
export function wrk(url: string, seconds: number, connections = 4): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("wrk", ["-t2", `-c${connections}`, `-d${seconds}s`, "--timeout", "5s", "--latency", "-H", "Connection: close", url], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
    const guard = setTimeout(() => child.kill("SIGKILL"), (seconds + 15) * 1000);
    child.once("error", (err) => {
      clearTimeout(guard);
      reject(new Error(`wrk: ${err.message} (Debian package wrk)`));
    });
    child.once("exit", (code) => {
      clearTimeout(guard);
      if (code !== 0) reject(new Error(`wrk exited ${code}: ${out}`));
      else resolve(parseWrk(out));
    });
  });
}

/** What "no request lost" means to a user: requests made, none refused or reset, none answered with an error. */
export function expectNoLoss(result: WrkResult, what: string): void {
  expect(result.requests, `${what}: wrk made requests\n${result.output}`).to.be.above(50);
  expect(result.socketErrors, `${what}: socket errors\n${result.output}`).to.equal(0);
  expect(result.non2xx, `${what}: non-2xx answers\n${result.output}`).to.equal(0);
}
