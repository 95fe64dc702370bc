// vigild's own systemd unit and its TimeoutStopUSec, asked of systemd
// (org.freedesktop.systemd1) on the system bus at start, for the check in
// systemd/stop-budget.ts.
import dbus from "dbus-next";
import { connectBus, resolveBusAddress } from "./connect.js";

interface SystemdManager {
  GetUnitByPID(pid: number): Promise<string>;
}

interface Properties {
  Get(iface: string, property: string): Promise<dbus.Variant<unknown>>;
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
    // dbus-next types a proxy's members as Function: these are the two systemd has.
    const manager = systemd.getInterface("org.freedesktop.systemd1.Manager") as unknown as SystemdManager;
    const path = await manager.GetUnitByPID(pid);
    const unit = await bus.getProxyObject("org.freedesktop.systemd1", path);
    const props = unit.getInterface("org.freedesktop.DBus.Properties") as unknown as Properties;
    const id = (await props.Get("org.freedesktop.systemd1.Unit", "Id")) as dbus.Variant<string>;
    const timeout = (await props.Get("org.freedesktop.systemd1.Service", "TimeoutStopUSec")) as dbus.Variant<bigint>;
    return { id: id.value, timeoutStopUsec: BigInt(timeout.value) };
  } finally {
    bus.disconnect();
  }
}
