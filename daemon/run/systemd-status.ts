// What vigild tells systemd about itself beside readiness: one STATUS= line
// at most once per turn of the loop however many workers changed, more time
// (EXTEND_TIMEOUT_USEC) while workers keep coming up, and a warning when the
// unit's TimeoutStopSec is shorter than a stop may take; and the watchdog,
// pinged only while vigild is healthy.
import type { Clock } from "../clock/clock.js";
import { formatDuration } from "../config/duration.js";
import type { ProgramConfig } from "../config/types.js";
import type { DaemonStateName } from "../core/vocabulary.js";
import type { Logger } from "../log/logger.js";
import type { Notifier } from "../systemd/notify.js";
import { STOP_MARGIN_MS, stopTimeoutFits } from "../systemd/stop-budget.js";
import { Watchdog } from "../systemd/watchdog.js";

export interface StatusSource {
  state(): DaemonStateName;
  text(): string;
  programs(): readonly ProgramConfig[];
}

export class SystemdStatus {
  /** A standing remark for STATUS= (a failed reload, a too short TimeoutStopSec). */
  note: string | null = null;
  private queued = false;

  constructor(
    private readonly notifier: Notifier,
    private readonly clock: Clock,
    private readonly source: StatusSource,
    /** Runs with every STATUS= sent (D-Bus properties follow it). */
    private readonly onFlush: () => void,
  ) {}

  queue(): void {
    if (this.queued) return;
    this.queued = true;
    this.clock.defer(() => {
      this.queued = false;
      const state = this.source.state();
      if (state === "starting") {
        // While workers keep coming up, systemd waits for them past TimeoutStartSec:
        // each sign of progress buys the slowest ready_timeout again.
        const slowest = Math.max(0, ...this.source.programs().map((p) => p.readyTimeoutMs));
        this.notifier.send({ STATUS: this.source.text(), EXTEND_TIMEOUT_USEC: (slowest + STOP_MARGIN_MS) * 1000 });
      } else if (state !== "stopped") this.notifier.send({ STATUS: this.source.text() });
      this.onFlush();
    });
  }

  /** Warns when systemd would kill the workers before vigild's own stop deadlines. */
  async checkStopTimeout(log: Logger): Promise<void> {
    const { readOwnUnit } = await import("../dbus/systemd-unit.js");
    let unit: Awaited<ReturnType<typeof readOwnUnit>>;
    try {
      unit = await readOwnUnit();
    } catch (err) {
      log.debug(`cannot read this unit's TimeoutStopUSec from systemd: ${(err as Error).message}, ignoring`);
      return;
    }
    const fit = stopTimeoutFits(unit.timeoutStopUsec, this.source.programs());
    if (fit.ok) return;
    const why =
      `${unit.id} has TimeoutStopSec=${formatDuration(fit.unitMs)}, shorter than the longest configured stop ` +
      `plus margin (${formatDuration(fit.requiredMs)})`;
    log.warn(`${why}: systemd may SIGKILL workers before their shutdown timeouts; raise TimeoutStopSec`);
    this.note = `warning: ${why}`;
    this.queue();
  }
}

/** Pings systemd's watchdog at half its interval while vigild is healthy; null when systemd does not watch. */
export function startWatchdog(deps: {
  notifier: Notifier;
  clock: Clock;
  log: Logger;
  maxLoopLagMs: number;
  supervisionOverdueMs: () => number;
  metrics: { watchdogPinged(): void; eventLoopLag(ms: number): void };
}): Watchdog | null {
  const { notifier, clock, log, metrics } = deps;
  const intervalMs = notifier.watchdogMs();
  if (intervalMs === null) return null;
  log.info(`systemd watchdog every ${formatDuration(intervalMs)}; pinging at half of it while healthy`);
  const watchdog = new Watchdog({
    clock,
    intervalMs,
    maxLoopLagMs: deps.maxLoopLagMs,
    supervisionOverdueMs: deps.supervisionOverdueMs,
    ping: () => {
      notifier.send({ WATCHDOG: 1 });
      metrics.watchdogPinged();
    },
    unhealthy: (why) => log.warn(`not pinging the systemd watchdog: ${why}`),
    lag: (ms) => metrics.eventLoopLag(ms),
  });
  watchdog.start();
  return watchdog;
}
