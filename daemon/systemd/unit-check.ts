// At start under systemd: read vigild's own unit's TimeoutStopUSec over
// D-Bus (org.freedesktop.systemd1) and say so when the configured shutdown
// timeouts do not fit in it: systemd would SIGKILL the workers (KillMode=mixed)
// before vigild's own deadlines and measurements could run.
import dbus from "dbus-next";
import type { ProgramConfig } from "../config/types.js";
import { UNKILLABLE_AFTER_MS } from "../worker/lifecycle.js";
import { connectBus, resolveBusAddress } from "../dbus/types.js";

/** Room for the stack-dump grace, the report and vigild's own exit. */
export const STOP_MARGIN_MS = 5_000;

/** The longest stop vigild may take: a worker's timeout, its stack dump, the wait for an unkillable one. */
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

export interface OwnUnit {
  id: string;
  timeoutStopUsec: bigint;
}

/** vigild's unit and its TimeoutStopUSec, asked of systemd on the system bus. */
export async function readOwnUnit(pid: number = process.pid): Promise<OwnUnit> {
  const address = resolveBusAddress("system", undefined, process.env);
  if (!address.ok) throw new Error(address.error);
  const bus = await connectBus("system", address.address, 5_000);
  try {
    const systemd = await bus.getProxyObject("org.freedesktop.systemd1", "/org/freedesktop/systemd1");
    const manager = systemd.getInterface("org.freedesktop.systemd1.Manager");
    const path = (await manager.GetUnitByPID(pid)) as string;
    const unit = await bus.getProxyObject("org.freedesktop.systemd1", path);
    const props = unit.getInterface("org.freedesktop.DBus.Properties");
    const id = (await props.Get("org.freedesktop.systemd1.Unit", "Id")) as dbus.Variant<string>;
    const timeout = (await props.Get("org.freedesktop.systemd1.Service", "TimeoutStopUSec")) as dbus.Variant<bigint>;
    return { id: id.value, timeoutStopUsec: BigInt(timeout.value) };
  } finally {
    bus.disconnect();
  }
}
