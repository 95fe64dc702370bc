// A missed heartbeat on a CPU-starved host is not (yet) a hang. The kernel's
// pressure stall information (/proc/pressure/cpu, PSI) says how much of the
// time runnable tasks waited for a CPU; with enough of that, and a worker that
// is runnable rather than stopped, vigild gives it one more timeout.
import { readFileSync } from "node:fs";

/** Share of the last 10 s in which some runnable task waited for a CPU, from which a miss is suspected starvation. */
export const STARVATION_PRESSURE = 25;

export function parseCpuPressure(text: string): number | null {
  const match = /^some avg10=(\d+(?:\.\d+)?)/m.exec(text);
  return match ? Number(match[1]) : null;
}

export function cpuPressure(file = "/proc/pressure/cpu"): number | null {
  try {
    return parseCpuPressure(readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}

/** The scheduler state of a process (R, S, D, T, t, Z, ...), or null when it is gone. */
export function schedulerState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return null;
  }
}

export interface StarvationInput {
  pressure: number | null;
  state: string | null;
  /** An extension was already given since the worker's last beat. */
  extended: boolean;
}

/** Whether a missed deadline is better explained by a starved CPU than by a hang. */
export function starvationSuspected(input: StarvationInput): boolean {
  if (input.extended || input.pressure === null || input.pressure < STARVATION_PRESSURE) return false;
  // A stopped (SIGSTOP, traced) or dead worker is not waiting for a CPU.
  return input.state !== null && !["T", "t", "Z", "X"].includes(input.state);
}
