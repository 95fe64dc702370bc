// How long a stop of vigild may take, in one place: what vigild asks systemd
// for (EXTEND_TIMEOUT_USEC when the stop begins) and what it checks its
// unit's TimeoutStopSec against at start (systemd would SIGKILL the workers,
// KillMode=mixed, before vigild's own deadlines and measurements could run).
import type { ProgramConfig } from "../config/types.js";
import { UNKILLABLE_AFTER_MS } from "../worker/lifecycle.js";

/** Room for the report and vigild's own exit. */
export const STOP_MARGIN_MS = 5_000;

/** The longest stop vigild may take: a worker's timeout, its stack dump, the wait for an unkillable one, the margin. */
export function requiredStopMs(programs: readonly ProgramConfig[]): number {
  return Math.max(0, ...programs.map((p) => p.shutdown.timeoutMs + p.stackDumpGraceMs)) + UNKILLABLE_AFTER_MS + STOP_MARGIN_MS;
}

export type StopFit = { ok: true } | { ok: false; unitMs: number; requiredMs: number };

/** TimeoutStopUSec of 0 or "infinity" (2^64-1) never cuts a stop short. */
export function stopTimeoutFits(timeoutStopUsec: bigint, programs: readonly ProgramConfig[]): StopFit {
  const requiredMs = requiredStopMs(programs);
  if (timeoutStopUsec === 0n || timeoutStopUsec >= 0xffffffffffffffffn) return { ok: true };
  const unitMs = Number(timeoutStopUsec / 1000n);
  return unitMs >= requiredMs ? { ok: true } : { ok: false, unitMs, requiredMs };
}
