// Keeps vigild's control interface on the bus: serves it on the first bus
// that answers, and when the bus goes away (dbus restarted) comes back with
// the same backoff as a worker's restart. Supervision never waits for it.
import type { Clock, TimerHandle } from "../clock/clock.js";
import type { BusChoice } from "../config/types.js";
import type { Control } from "../control.js";
import { busCandidates } from "../dbus/choose.js";
import type { BusKind } from "../dbus/connect.js";
import type { DbusService } from "../dbus/service.js";
import type { Logger } from "../log/logger.js";
import { nextRestartDelay } from "../worker/policy.js";

const RECONNECT = { backoffInitialMs: 500, backoffMaxMs: 30_000 };

export class DbusKeeper {
  private service: DbusService | null = null;
  private retry: TimerHandle | null = null;
  private closed = false;

  constructor(
    private readonly control: Control,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  async start(choice: BusChoice): Promise<void> {
    const failures: string[] = [];
    for (const bus of busCandidates(choice, process.env)) {
      try {
        await this.serve(bus);
        return;
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    if (failures.length === 0) {
      if (choice === "auto") this.log.info("D-Bus: no bus found; vigilctl cannot reach this vigild");
      return;
    }
    // Supervision goes on without the control plane.
    this.log[choice === "auto" ? "info" : "warn"](`D-Bus: not serving org.vigil.Supervisor1: ${failures.join("; ")}`);
  }

  propertiesMaybeChanged(): void {
    this.service?.propertiesMaybeChanged();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.retry?.cancel();
    await this.service?.close();
  }

  private async serve(bus: BusKind): Promise<void> {
    // dbus-next is loaded only when a bus is used: a vigild without one stays smaller.
    const { startDbusService } = await import("../dbus/service.js");
    const service = await startDbusService(this.control, { bus, log: this.log, onLost: () => this.reconnect(bus, 1) });
    this.service = service;
    if (this.closed) await service.close();
  }

  /** The bus went away: own the name again once it is back. */
  private reconnect(bus: BusKind, attempt: number): void {
    this.service = null;
    if (this.closed) return;
    this.retry = this.clock.at(this.clock.now() + nextRestartDelay(attempt, RECONNECT), () => {
      this.retry = null;
      this.serve(bus).then(
        () => this.log.info(`D-Bus: reconnected after ${attempt} attempt(s)`),
        (err: Error) => {
          this.log.debug(`D-Bus: reconnect attempt ${attempt} failed: ${err.message}`);
          this.reconnect(bus, attempt + 1);
        },
      );
    });
  }
}
