// vigild's own systemd unit and its TimeoutStopUSec, asked of systemd
// (org.freedesktop.systemd1) on the system bus at start, for the check in
// systemd/stop-budget.ts.
import dbus from "dbus-next";
import { connectBus, resolveBusAddress } from "./connect.js";

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
