// vigild itself: the composition root's running part. Signals only queue an
// event; daemonStep() decides; run() carries the decision out.
import { formatDuration } from "./config/duration.js";
import type { Config } from "./config/types.js";
import type { Clock } from "./clock/clock.js";
import { logEvent } from "./log/events.js";
import type { Logger } from "./log/logger.js";
import { Metrics } from "./metrics/metrics.js";
import { startMetricsServer, type MetricsServer } from "./metrics/server.js";
import { EventBus, type SupervisorEvent } from "./supervisor/events.js";
import { Supervisor } from "./supervisor/supervisor.js";
import type { Outcome } from "./worker/policy.js";

export type DaemonState = "starting" | "running" | "stopping" | "forcing" | "stopped";
export type DaemonEvent = "all-ready" | "term" | "stopped";
export type DaemonAction = "none" | "announce-ready" | "begin-stop" | "force" | "finish";

/** The daemon's own lifecycle: a second SIGTERM/SIGINT during a stop forces it. */
export function daemonStep(state: DaemonState, event: DaemonEvent): { next: DaemonState; action: DaemonAction } {
  switch (event) {
    case "all-ready":
      return state === "starting" ? { next: "running", action: "announce-ready" } : { next: state, action: "none" };
    case "term":
      if (state === "starting" || state === "running") return { next: "stopping", action: "begin-stop" };
      if (state === "stopping") return { next: "forcing", action: "force" };
      return { next: state, action: "none" };
    case "stopped":
      return { next: "stopped", action: "finish" };
  }
}

export interface StopSummary {
  workers: number;
  elapsedMs: number;
  outcomes: Record<Outcome, number>;
  hangs: string[];
}

export function summarizeStop(summary: StopSummary): string {
  const { outcomes } = summary;
  const parts = (["clean", "skipped", "forced"] as const).filter((o) => outcomes[o] > 0).map((o) => `${outcomes[o]} ${o}`);
  const hangs = summary.hangs.length > 0 ? ` (${summary.hangs.join(", ")})` : "";
  const worker = summary.workers === 1 ? "worker" : "workers";
  return `stopped ${summary.workers} ${worker} in ${(summary.elapsedMs / 1000).toFixed(2)} s${parts.length ? `: ${parts.join(", ")}` : ""}${hangs}`;
}

export interface DaemonDeps {
  config: Config;
  clock: Clock;
  log: Logger;
  /** Resolves with the exit status when vigild has stopped. */
}

export class Daemon {
  private state: DaemonState = "starting";
  private readonly bus = new EventBus();
  private readonly metrics = new Metrics();
  private supervisor: Supervisor | null = null;
  private server: MetricsServer | null = null;
  private stopStartedAt = 0;
  private stopSummary: StopSummary = { workers: 0, elapsedMs: 0, outcomes: { clean: 0, skipped: 0, forced: 0 }, hangs: [] };
  private finished: ((status: number) => void) | null = null;

  constructor(private readonly deps: DaemonDeps) {}

  /** Starts everything; the promise resolves with the exit status once vigild has stopped. */
  async run(): Promise<number> {
    const { config, log, clock } = this.deps;
    this.bus.subscribe((event) => logEvent(log, event));
    this.bus.subscribe(this.metrics.onEvent);
    this.bus.subscribe((event) => this.recordForSummary(event));
    if (config.metrics.listen) {
      this.server = await startMetricsServer(this.metrics, config.metrics.listen, () => this.health());
      log.info(`metrics on ${this.server.url}`, { address: this.server.url });
    }
    const supervisor = new Supervisor(config, {
      clock,
      emit: this.bus.emit,
      onChange: () => {
        if (this.supervisor?.allReady) this.dispatch("all-ready");
      },
    });
    this.supervisor = supervisor;
    this.metrics.attach(supervisor);
    const done = new Promise<number>((resolve) => (this.finished = resolve));
    this.installSignals();
    const total = config.programs.reduce((n, p) => n + p.instances, 0);
    log.info(`starting ${total} workers of ${config.programs.length} programs`, { config: config.file });
    supervisor.start();
    if (supervisor.allReady) this.dispatch("all-ready");
    return done;
  }

  private installSignals(): void {
    // Handlers only queue: the dispatcher runs on the next turn of the loop.
    const queue = (event: DaemonEvent) => () => setImmediate(() => this.dispatch(event));
    process.on("SIGTERM", queue("term"));
    process.on("SIGINT", queue("term"));
    // Without a handler SIGHUP would kill vigild; reload comes with the systemd work.
    process.on("SIGHUP", () => this.deps.log.warn("SIGHUP: reload is not supported yet; keeping the running configuration"));
  }

  private dispatch(event: DaemonEvent): void {
    const { next, action } = daemonStep(this.state, event);
    this.state = next;
    switch (action) {
      case "none":
        return;
      case "announce-ready":
        this.deps.log.info(`all ${this.supervisor?.workerCount() ?? 0} workers ready`);
        return;
      case "begin-stop":
        this.beginStop();
        return;
      case "force":
        this.deps.log.warn("second stop request: killing every remaining worker now");
        this.supervisor?.force();
        return;
      case "finish":
        void this.finish();
        return;
    }
  }

  private beginStop(): void {
    const supervisor = this.supervisor;
    this.stopStartedAt = this.deps.clock.now();
    const count = supervisor?.workerCount() ?? 0;
    this.deps.log.info(`stopping ${count} workers`);
    if (!supervisor) return this.dispatch("stopped");
    void supervisor.stop("stop").then(() => this.dispatch("stopped"));
  }

  private recordForSummary(event: SupervisorEvent): void {
    if (event.type !== "worker-exited" || (this.state !== "stopping" && this.state !== "forcing")) return;
    const s = this.stopSummary;
    s.workers++;
    if (event.outcome) s.outcomes[event.outcome]++;
    if (event.hang) s.hangs.push(`${event.hang} hang: ${event.program}/${event.worker}`);
  }

  private async finish(): Promise<void> {
    this.stopSummary.elapsedMs = this.deps.clock.now() - this.stopStartedAt;
    this.deps.log.info(summarizeStop(this.stopSummary), { elapsed: formatDuration(this.stopSummary.elapsedMs) });
    this.supervisor?.close();
    await this.server?.close();
    this.finished?.(0);
  }

  private health(): { ok: boolean; detail: string } {
    const failed = this.supervisor?.failedPrograms.map((p) => p.name) ?? [];
    if (failed.length > 0) return { ok: false, detail: `failed programs: ${failed.join(", ")}` };
    return { ok: this.state === "running", detail: this.state };
  }
}
