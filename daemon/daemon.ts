// vigild itself: turns signals and supervisor changes into lifecycle events,
// carries out what daemonStep() decides, and offers the Control facade that
// D-Bus serves. Bringing the parts up, reload, the stop's record, D-Bus
// keeping and what systemd is told live in daemon/run/.
import { loadConfigFile } from "./config/load.js";
import type { Config } from "./config/types.js";
import { assertNever } from "./core/assert.js";
import { EventBus, type SupervisorEvent } from "./core/events.js";
import { Serial } from "./core/serial.js";
import { UnknownProgramError, type Control, type ControlEvent, type ReloadResult, type StatusSnapshot } from "./control.js";
import { INITIAL_DAEMON_STATE, daemonStep, statusLine, type DaemonAction, type DaemonEvent, type DaemonState } from "./lifecycle.js";
import { logEvent } from "./log/events.js";
import { Metrics } from "./metrics/metrics.js";
import type { MetricsServer } from "./metrics/server.js";
import { DbusKeeper } from "./run/dbus-keeper.js";
import { processSignals, startParts, type DaemonDeps } from "./run/start.js";
import { applyReload, prepareReload } from "./run/reload.js";
import { StopRecord, loadPreviousReport } from "./run/stop-record.js";
import { SystemdStatus } from "./run/systemd-status.js";
import type { LastShutdownReport } from "./shutdown/report.js";
import type { SocketSet } from "./sockets/set.js";
import { describeSupervisor } from "./supervisor/describe.js";
import type { Supervisor } from "./supervisor/supervisor.js";
import { requiredStopMs } from "./systemd/stop-budget.js";
import type { Watchdog } from "./systemd/watchdog.js";
import { VERSION } from "./version.js";

export type { DaemonDeps };

export class Daemon implements Control {
  private s: DaemonState = INITIAL_DAEMON_STATE;
  private config: Config;
  private readonly bus = new EventBus();
  private readonly metrics = new Metrics();
  private readonly systemd: SystemdStatus;
  private readonly stop: StopRecord;
  private readonly dbus: DbusKeeper;
  private supervisor: Supervisor | null = null;
  private sockets: SocketSet | null = null;
  private server: MetricsServer | null = null;
  private watchdog: Watchdog | null = null;
  private readonly listeners = new Set<(event: ControlEvent) => void>();
  private lastReport: LastShutdownReport | null = null;
  private reloadWaiters: Array<(result: ReloadResult) => void> = [];
  private finished: ((status: number) => void) | null = null;
  private readonly events = new Serial<DaemonEvent>(
    (event) => {
      const { next, actions } = daemonStep(this.s, event);
      this.s = next;
      for (const action of actions) this.act(action);
    },
    () => this.systemd.queue(),
  );

  constructor(private readonly deps: DaemonDeps) {
    this.config = deps.config;
    const { clock, log, notifier } = deps;
    this.systemd = new SystemdStatus(notifier, clock, { state: () => this.s.name, text: () => this.statusText(), programs: () => this.config.programs }, () =>
      this.dbus.propertiesMaybeChanged(),
    );
    this.stop = new StopRecord(clock, log, this.config.stateDir);
    this.dbus = new DbusKeeper(this, clock, log);
  }

  /** Starts everything; resolves with the exit status once vigild has stopped. */
  async run(): Promise<number> {
    const { log, clock } = this.deps;
    this.bus.subscribe((event) => logEvent(log, event));
    this.bus.subscribe(this.metrics.onEvent);
    this.bus.subscribe((event) => this.observe(event));
    this.lastReport = loadPreviousReport(this.config.stateDir, log);
    if (this.lastReport) this.metrics.lastShutdown(this.lastReport);
    const parts = await startParts(this.deps, this.config, this.metrics, this.bus.emit, {
      onChange: () => this.onSupervisorChange(),
      health: () => this.health(),
    });
    if (!parts) return 1;
    const { supervisor } = parts;
    ({ sockets: this.sockets, server: this.server, supervisor: this.supervisor, watchdog: this.watchdog } = parts);
    const done = new Promise<number>((resolve) => (this.finished = resolve));
    const onSignal = this.deps.onSignal ?? processSignals(clock);
    onSignal("term", () => this.dispatch("term"));
    onSignal("hup", () => this.dispatch("hup"));
    log.info(`vigild ${VERSION} starting ${supervisor.expectedWorkers()} workers of ${this.config.programs.length} programs`, {
      config: this.config.file,
      pid: process.pid,
    });
    supervisor.start();
    this.onSupervisorChange();
    if (this.deps.systemBus !== false) {
      // The control plane comes up beside the workers: a slow bus must not delay them.
      void this.dbus.start(this.config.dbus.bus);
      if (process.env.INVOCATION_ID) void this.systemd.checkStopTimeout(log);
    }
    return done;
  }

  // ---- Control ----------------------------------------------------------

  status(): StatusSnapshot {
    const { programs, workers } = describeSupervisor(this.supervisor, this.deps.clock.now());
    return { state: this.s.name, version: VERSION, pid: process.pid, configFile: this.config.file, statusText: this.statusText(), programs, workers };
  }

  async restartProgram(name: string): Promise<void> {
    const pending = this.supervisor?.restartProgram(name);
    if (!pending) throw new UnknownProgramError(name);
    this.deps.log.info(`restarting program ${name} (rolling)`, { program: name });
    await pending;
  }

  reload(): Promise<ReloadResult> {
    const result = new Promise<ReloadResult>((resolve) => this.reloadWaiters.push(resolve));
    this.dispatch("hup");
    return result;
  }

  lastShutdown(): LastShutdownReport | null {
    return this.lastReport;
  }

  subscribe(listener: (event: ControlEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  // ---- lifecycle --------------------------------------------------------

  private dispatch(event: DaemonEvent): void {
    this.events.push(event);
  }

  private act(action: DaemonAction): void {
    const { log, notifier } = this.deps;
    switch (action) {
      case "announce-ready":
        log.info(`all ${this.supervisor?.readyWorkers() ?? 0} workers ready`);
        notifier.send({ READY: 1, STATUS: this.statusText() });
        return;
      case "report-failed-start": {
        const failed = this.supervisor?.failedPrograms ?? [];
        const why = `start failed: ${failed.map((p) => `program ${p.name} FAILED (${p.failure ?? "?"})`).join(", ")}`;
        log.error(`${why}; stopping`);
        this.systemd.note = why;
        // ECHILD: the failure is a child's. systemd shows ERRNO in `systemctl status`.
        notifier.send({ STATUS: why, ERRNO: 10 });
        return;
      }
      case "begin-stop":
        return this.beginStop();
      case "force":
        this.stop.forced = true;
        log.warn("second stop request: killing every remaining worker now");
        this.supervisor?.force();
        return;
      case "begin-reload":
        return this.beginReload();
      case "announce-reloaded":
        notifier.send({ READY: 1, STATUS: this.statusText() });
        return;
      case "refuse-reload":
        log.warn(`SIGHUP while ${this.s.name}: not reloading now`);
        this.settleReloadWaiters({ ok: false, errors: [`vigild is ${this.s.name}; not reloading now`] });
        return;
      case "finish":
        void this.finish();
        return;
      default:
        assertNever(action, "daemon action");
    }
  }

  private onSupervisorChange(): void {
    const supervisor = this.supervisor;
    if (supervisor && this.s.name === "starting") {
      if (supervisor.failedPrograms.length > 0) this.dispatch("start-failed");
      else if (supervisor.allReady) this.dispatch("all-ready");
    }
    this.systemd.queue();
  }

  private beginStop(): void {
    const supervisor = this.supervisor;
    this.stop.begin(supervisor?.workerCount() ?? 0);
    // systemd waits for vigild's own deadlines, up to giving up on a worker that SIGKILL does not end.
    const budgetMs = requiredStopMs(supervisor?.allPrograms().map((p) => p.cfg) ?? []);
    this.deps.notifier.send({ STOPPING: 1, STATUS: this.statusText(), EXTEND_TIMEOUT_USEC: budgetMs * 1000 });
    this.deps.log.info(`stopping ${this.stop.total} workers`);
    if (!supervisor) return this.dispatch("stopped");
    // One moment for every worker: the last one reached is not given more time.
    void supervisor.stop("stop", this.stop.startedAt).then(() => this.dispatch("stopped"));
  }

  private beginReload(): void {
    const { log, clock, notifier } = this.deps;
    // MONOTONIC_USEC lets systemd tell this reload from an earlier one.
    notifier.send({ RELOADING: 1, MONOTONIC_USEC: Math.round(clock.now() * 1000), STATUS: "reloading" });
    const prepared = prepareReload(this.config, this.deps.loadConfig ?? loadConfigFile, this.sockets!, log);
    if (!prepared.ok) {
      this.systemd.note = `reload failed: ${prepared.errors[0]}; running the previous configuration`;
      log.warn(`reload failed; keeping the running configuration`);
      this.settleReloadWaiters({ ok: false, errors: prepared.errors });
      return this.dispatch("reload-done");
    }
    this.config = prepared.config;
    this.systemd.note = null;
    const { plan, summary } = applyReload(this.supervisor!, this.config, clock, (settled) => {
      log.info(`reload done: ${settled}`);
      this.settleReloadWaiters({ ok: true, summary: settled });
      this.dispatch("reload-done");
    });
    for (const name of plan.added) this.metrics.addProgram(name);
    log.info(`reloading: ${summary}`, { config: this.config.file });
  }

  private settleReloadWaiters(result: ReloadResult): void {
    const waiters = this.reloadWaiters;
    this.reloadWaiters = [];
    for (const resolve of waiters) resolve(result);
  }

  private observe(event: SupervisorEvent): void {
    if (this.stop.observe(event)) this.systemd.queue();
    if (event.type === "worker-hang") {
      const { program, worker, pid, phase, afterMs } = event;
      this.emitControl({ type: "worker-hung", program, worker, pid, phase, afterMs });
    } else if (event.type === "worker-exited") {
      const { program, worker, pid, code, signal, outcome } = event;
      this.emitControl({ type: "worker-exited", program, worker, pid, code, signal, outcome });
    }
  }

  private emitControl(event: ControlEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private async finish(): Promise<void> {
    this.watchdog?.stop();
    const report = this.stop.finish();
    this.deps.log.info(report.summary, { duration_ms: report.duration_ms, ...report.outcomes });
    // After a failed start, the reason stays in front: it is what `systemctl status` should show.
    const note = this.s.exitStatus !== 0 ? this.systemd.note : null;
    this.deps.notifier.send({ STATUS: note ? `${note}; ${report.summary}` : report.summary });
    this.supervisor?.close();
    this.sockets?.close();
    await Promise.all([this.server?.close(), this.dbus.close()]);
    this.finished?.(this.s.exitStatus);
  }

  private statusText(): string {
    const s = this.supervisor;
    return statusLine({
      state: this.s.name,
      ready: s?.readyWorkers() ?? 0,
      expected: s?.expectedWorkers() ?? 0,
      alive: s?.workerCount() ?? 0,
      stopTotal: this.stop.total,
      failed: s?.failedPrograms.map((p) => p.name) ?? [],
      note: this.systemd.note,
    });
  }

  private health(): { ok: boolean; detail: string } {
    const failed = this.supervisor?.failedPrograms.map((p) => p.name) ?? [];
    if (failed.length > 0) return { ok: false, detail: `failed programs: ${failed.join(", ")}` };
    return { ok: this.s.name === "running" || this.s.name === "reloading", detail: this.statusText() };
  }
}
