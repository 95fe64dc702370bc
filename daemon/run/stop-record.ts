// A stop of vigild as it is recorded: when it began, how many workers it had
// to stop, what each one's stop came to, and the last-shutdown report written
// at the end (and read back at the next start, for vigilctl and metrics).
import type { Clock } from "../clock/clock.js";
import type { SupervisorEvent } from "../core/events.js";
import type { Logger } from "../log/logger.js";
import { buildReport, workerRecord } from "../shutdown/collect.js";
import type { LastShutdownReport, WorkerShutdownRecord } from "../shutdown/report.js";
import { clearStopMarker, loadReport, markStopBegun, saveReport, unfinishedStop } from "../shutdown/store.js";

export class StopRecord {
  startedAt = 0;
  total = 0;
  forced = false;
  private startedWall = new Date(0);
  private recording = false;
  private readonly records: WorkerShutdownRecord[] = [];
  private readonly switched: string[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly stateDir: string,
  ) {}

  /** The stop begins: a marker on disk says so until the report is written. */
  begin(total: number): void {
    this.startedAt = this.clock.now();
    this.startedWall = this.clock.wallNow();
    this.total = total;
    this.recording = true;
    try {
      markStopBegun(this.stateDir, this.startedWall.toISOString());
    } catch (err) {
      this.log.warn(`cannot write the stop marker in ${this.stateDir}: ${(err as Error).message}; continuing the stop`);
    }
  }

  /** Sees every supervisor event; records only during the stop. Returns whether it recorded a worker. */
  observe(event: SupervisorEvent): boolean {
    if (!this.recording) return false;
    if (event.type === "teardown-switched") this.switched.push(event.program);
    if (event.type !== "worker-exited") return false;
    const record = workerRecord(event);
    if (record) this.records.push(record);
    return true;
  }

  /** The report of the stop, saved to the state directory (a failure to write is logged, not fatal). */
  finish(): LastShutdownReport {
    const report = buildReport({
      records: this.records,
      startedAt: this.startedWall,
      endedAt: this.clock.wallNow(),
      durationMs: this.clock.now() - this.startedAt,
      forcedBySignal: this.forced,
      teardownSwitched: this.switched,
    });
    try {
      saveReport(this.stateDir, report);
      clearStopMarker(this.stateDir);
    } catch (err) {
      this.log.error(`cannot write the last-shutdown report to ${this.stateDir}: ${(err as Error).message}`);
    }
    return report;
  }
}

/** The report of the previous stop, if there is a readable one; says when that stop never finished. */
export function loadPreviousReport(stateDir: string, log: Logger): LastShutdownReport | null {
  const marker = unfinishedStop(stateDir);
  if (marker) {
    log.warn(`the previous stop did not complete (vigild ${marker.pid}, begun ${marker.started_at}); its report is missing or older`);
    try {
      clearStopMarker(stateDir);
    } catch {
      // Reported again at the next start; nothing else depends on it.
    }
  }
  const loaded = loadReport(stateDir);
  switch (loaded.kind) {
    case "none":
      return null;
    case "bad":
      log.warn(`ignoring the last-shutdown report in ${stateDir}: ${loaded.error}`);
      return null;
    case "ok":
      log.info(`previous stop: ${loaded.report.summary}`, { ended_at: loaded.report.ended_at });
      return loaded.report;
  }
}
