// Which bus vigild serves its control interface on.
import { existsSync } from "node:fs";
import type { BusChoice } from "../config/types.js";
import type { BusKind } from "./connect.js";

export const SYSTEM_BUS_SOCKET = "/run/dbus/system_bus_socket";

/**
 * The buses to try, in order. `auto` prefers the system bus when one is
 * there, else a session bus when one is set; an explicit choice is tried
 * alone; `none` is none.
 */
export function busCandidates(
  choice: BusChoice,
  env: Readonly<Record<string, string | undefined>>,
  systemSocketExists: () => boolean = () => existsSync(SYSTEM_BUS_SOCKET),
): BusKind[] {
  switch (choice) {
    case "none":
      return [];
    case "system":
    case "session":
      return [choice];
    case "auto": {
      const out: BusKind[] = [];
      if (env.DBUS_SYSTEM_BUS_ADDRESS || systemSocketExists()) out.push("system");
      if (env.DBUS_SESSION_BUS_ADDRESS) out.push("session");
      return out;
    }
  }
}
