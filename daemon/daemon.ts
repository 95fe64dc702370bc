// vigild itself: the running part of the composition root. Signals only queue
// an event; daemonStep() decides; the Daemon carries the decision out and
// tells systemd, the log and the metrics what it is doing.
import { loadConfigFile, ConfigError } from "./config/load.js";
import { formatDuration } from "./config/duration.js";
import type { Config } from "./config/types.js";
import type { Clock, TimerHandle } from "./clock/clock.js";
import {
  UnknownProgramError,
  type Control,
  type ControlEvent,
  type DaemonStateName,
  type ReloadResult,
  type StatusSnapshot,
} from "./control.js";
import { logEvent } from "./log/events.js";
import type { Logger } from "./log/logger.js";
import { Metrics } from "./metrics/metrics.js";
import { describeSupervisor } from "./supervisor/describe.js";
import { startMetricsServer, type MetricsServer } from "./metrics/server.js";
import { buildReport, workerRecord } from "./shutdown/collect.js";
import type { LastShutdownReport, WorkerShutdownRecord } from "./shutdown/report.js";
import { clearStopMarker, loadReport, markStopBegun, saveReport, unfinishedStop } from "./shutdown/store.js";
import { EventBus, type SupervisorEvent } from "./supervisor/events.js";
import { Supervisor, describePlan } from "./supervisor/supervisor.js";
import type { Notifier } from "./systemd/notify.js";
import { Watchdog } from "./systemd/watchdog.js";
import { busCandidates } from "./dbus/choose.js";
import type { DbusService } from "./dbus/service.js";
import type { OwnUnit } from "./systemd/unit-check.js";
import { VERSION } from "./version.js";
import { daemonStep, statusLine, type DaemonEvent } from "./lifecycle.js";
import { SocketError } from "./sockets/bind.js";
import { SocketSet } from "./sockets/set.js";
import type { Inherited } from "./sockets/inherited.js";
import { chooseOutputRoute, type OutputRoute } from "./worker/journal.js";
import { UNKILLABLE_AFTER_MS } from "./worker/lifecycle.js";

export interface DaemonDeps {
  config: Config;
  clock: Clock;
  log: Logger;
  notifier: Notifier;
  /** Re-reads the configuration file (SIGHUP); throws ConfigError. */
  loadConfig?: (file: string) => Config;
  /** Sockets systemd passed to vigild (LISTEN_FDS), taken from the environment at start. */
  inherited?: Inherited;
  /** Where worker output goes; by default the journal when vigild's stdout is it. */
  outputRoute?: OutputRoute;
}

/** Slack on top of the longest worker stop before systemd may give up on vigild. */
const STOP_SLACK_MS = 5_000;

export class Daemon implements Control {
  private state: DaemonStateName = "starting";
  private config: Config;
  private readonly bus = new EventBus();
  private readonly metrics = new Metrics();
  private supervisor: Supervisor | null = null;
  private sockets: SocketSet | null = null;
  private server: MetricsServer | null = null;
  private watchdog: Watchdog | null = null;
  private dbus: DbusService | null = null;
  private dbusRetry: TimerHandle | null = null;
  private readonly listeners: Array<(event: ControlEvent) => void> = [];
  private lastReport: LastShutdownReport | null = null;
  private statusNote: string | null = null;
  private statusQueued = false;
  private reloadQueued = false;
  private reloadWaiters: Array<(result: ReloadResult) => void> = [];
  private exitStatus = 0;
  private stop = {
    startedAt: 0,
    startedWall: new Date(0),
    total: 0,
    forced: false,
    records: [] as WorkerShutdownRecord[],
    switched: [] as string[],
  };
  private finished: ((status: number) => void) | null = null;

  constructor(private readonly deps: DaemonDeps) {
    this.config = deps.config;
  }

  /** Starts everything; resolves with the exit status once vigild has stopped. */
  async run(): Promise<number> {
    const { log, clock } = this.deps;
    this.bus.subscribe((event) => logEvent(log, event));
    this.bus.subscribe(this.metrics.onEvent);
    this.bus.subscribe((event) => this.observe(event));
    this.loadPreviousReport();
    const sockets = this.openSockets();
    if (!sockets) return 1;
    if (this.config.metrics.listen) {
      this.server = await startMetricsServer(this.metrics, this.config.metrics.listen, () => this.health());
      log.info(`metrics on ${this.server.url}`, { address: this.server.url });
    }
    const route = this.deps.outputRoute ?? chooseOutputRoute();
    log.info(
      route.kind === "journal"
        ? "worker output: straight to the journal, one stream per worker (identifier program/index)"
        : "worker output: through vigild's log, at most 1 MiB held per worker",
    );
    const supervisor = new Supervisor(this.config, {
      clock,
      emit: this.bus.emit,
      onChange: () => this.onSupervisorChange(),
      output: { route, log: (lines, taken) => log.output(lines, taken) },
      sockets,
    });
    this.supervisor = supervisor;
    this.metrics.attach(supervisor);
    for (const program of this.config.programs) this.metrics.addProgram(program.name);
    const done = new Promise<number>((resolve) => (this.finished = resolve));
    this.installSignals();
    this.startWatchdog();
    const expected = supervisor.expectedWorkers();
    log.info(`vigild ${VERSION} starting ${expected} workers of ${this.config.programs.length} programs`, {
      config: this.config.file,
      pid: process.pid,
    });
    supervisor.start();
    this.onSupervisorChange();
    // The control plane comes up beside the workers: a slow bus must not delay them.
    void this.startDbus();
    if (process.env.INVOCATION_ID) void this.checkStopTimeout();
    return done;
  }

  /** Binds (or takes from systemd) the configured sockets; null after telling why they could not be. */
  private openSockets(): SocketSet | null {
    const { log, notifier } = this.deps;
    const inherited = this.deps.inherited;
    if (inherited?.ignored) log.warn(`ignoring sockets from systemd: ${inherited.ignored}`);
    const sockets = new SocketSet(inherited?.byName);
    try {
      this.logSocketChange(sockets.apply(this.config.sockets));
    } catch (err) {
      if (!(err instanceof SocketError)) throw err;
      const why = `start failed: ${err.message}`;
      log.error(why, { socket: err.socket, address: err.address });
      notifier.send({ STATUS: why, ERRNO: 98 });
      return null;
    }
    for (const name of inherited?.byName.keys() ?? []) {
      if (!this.config.sockets.some((s) => s.name === name)) log.warn(`systemd passed a socket named ${name}, which is not under sockets:; ignoring it`);
    }
    this.sockets = sockets;
    this.metrics.attachSockets(sockets);
    return sockets;
  }

  private logSocketChange(change: { notes: string[]; warnings: string[] }): void {
    for (const note of change.notes) this.deps.log.info(note);
    for (const warning of change.warnings) this.deps.log.warn(warning);
  }

  private async serveDbus(bus: "system" | "session"): Promise<void> {
    // dbus-next is loaded only when a bus is used: a vigild without one stays smaller.
    const { startDbusService } = await import("./dbus/service.js");
    const service = await startDbusService(this, { bus, log: this.deps.log, onLost: () => this.reconnectDbus(bus, 1) });
    this.dbus = service;
    if (this.isStopping() || this.state === "stopped") await service.close();
  }

  /** The bus went away (e.g. dbus restarted): come back and own the name again, with backoff. */
  private reconnectDbus(bus: "system" | "session", attempt: number): void {
    const { clock, log } = this.deps;
    this.dbus = null;
    if (this.isStopping() || this.state === "stopped") return;
    const delay = Math.min(30_000, 500 * 2 ** (attempt - 1));
    this.dbusRetry = clock.at(clock.now() + delay, () => {
      this.dbusRetry = null;
      this.serveDbus(bus).then(
        () => log.info(`D-Bus: reconnected after ${attempt} attempt(s)`),
        (err: Error) => {
          log.debug(`D-Bus: reconnect attempt ${attempt} failed: ${err.message}`);
          this.reconnectDbus(bus, attempt + 1);
        },
      );
    });
  }

  /** Warns when systemd would kill the workers before vigild's own stop deadlines. */
  private async checkStopTimeout(): Promise<void> {
    const { log } = this.deps;
    const { readOwnUnit, stopTimeoutFits } = await import("./systemd/unit-check.js");
    let unit: OwnUnit;
    try {
      unit = await readOwnUnit();
    } catch (err) {
      log.debug(`cannot read this unit's TimeoutStopUSec from systemd: ${(err as Error).message}, ignoring`);
      return;
    }
    const fit = stopTimeoutFits(unit.timeoutStopUsec, this.config.programs);
    if (fit.ok) return;
    const why =
      `${unit.id} has TimeoutStopSec=${formatDuration(fit.unitMs)}, shorter than the longest configured stop ` +
      `plus margin (${formatDuration(fit.requiredMs)})`;
    log.warn(`${why}: systemd may SIGKILL workers before their shutdown timeouts; raise TimeoutStopSec`);
    this.statusNote = `warning: ${why}`;
    this.queueStatus();
  }

  private async startDbus(): Promise<void> {
    const { log } = this.deps;
    const candidates = busCandidates(this.config.dbus.bus, process.env);
    const failures: string[] = [];
    for (const bus of candidates) {
      try {
        await this.serveDbus(bus);
        return;
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    if (failures.length === 0) {
      if (this.config.dbus.bus === "auto") log.info("D-Bus: no bus found; vigilctl cannot reach this vigild");
      return;
    }
    // Supervision goes on without the control plane.
    const level = this.config.dbus.bus === "auto" ? "info" : "warn";
    log[level](`D-Bus: not serving org.vigil.Supervisor1: ${failures.join("; ")}`);
  }

  // ---- Control ----------------------------------------------------------

  status(): StatusSnapshot {
    const { programs, workers } = describeSupervisor(this.supervisor, this.deps.clock.now());
    return {
      state: this.state,
      version: VERSION,
      pid: process.pid,
      configFile: this.config.file,
      statusText: this.statusText(),
      programs,
      workers,
    };
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
    this.listeners.push(listener);
    return () => {
      const at = this.listeners.indexOf(listener);
      if (at !== -1) this.listeners.splice(at, 1);
    };
  }

  // ---- lifecycle --------------------------------------------------------

  private installSignals(): void {
    // Handlers only queue: the dispatcher runs on the next turn of the loop.
    const queue = (event: DaemonEvent) => () => setImmediate(() => this.dispatch(event));
    process.on("SIGTERM", queue("term"));
    process.on("SIGINT", queue("term"));
    process.on("SIGHUP", queue("hup"));
  }

  private dispatch(event: DaemonEvent): void {
    const { next, action } = daemonStep(this.state, event);
    this.state = next;
    switch (action) {
      case "none":
        break;
      case "announce-ready":
        this.deps.log.info(`all ${this.supervisor?.readyWorkers() ?? 0} workers ready`);
        this.deps.notifier.send({ READY: 1, STATUS: this.statusText() });
        break;
      case "begin-failed-start":
        this.beginFailedStart();
        break;
      case "begin-stop":
        this.beginStop();
        break;
      case "force":
        this.stop.forced = true;
        this.deps.log.warn("second stop request: killing every remaining worker now");
        this.supervisor?.force();
        break;
      case "begin-reload":
        this.beginReload();
        break;
      case "queue-reload":
        this.reloadQueued = true;
        break;
      case "finish-reload":
        this.deps.notifier.send({ READY: 1, STATUS: this.statusText() });
        if (this.reloadQueued) {
          this.reloadQueued = false;
          setImmediate(() => this.dispatch("hup"));
        }
        break;
      case "ignore-hup":
        this.deps.log.warn(`SIGHUP while ${this.state}: not reloading now`);
        this.settleReloadWaiters({ ok: false, errors: [`vigild is ${this.state}; not reloading now`] });
        break;
      case "finish":
        void this.finish();
        break;
    }
    this.queueStatus();
  }

  private onSupervisorChange(): void {
    const supervisor = this.supervisor;
    if (!supervisor) return;
    if (this.state === "starting") {
      const failed = supervisor.failedPrograms;
      if (failed.length > 0) this.dispatch("start-failed");
      else if (supervisor.allReady) this.dispatch("all-ready");
    }
    this.queueStatus();
  }

  private beginFailedStart(): void {
    const failed = this.supervisor?.failedPrograms ?? [];
    const why = `start failed: ${failed.map((p) => `program ${p.name} FAILED (${p.failure ?? "?"})`).join(", ")}`;
    this.deps.log.error(`${why}; stopping`);
    this.statusNote = why;
    // ECHILD: the failure is a child's. systemd shows ERRNO in `systemctl status`.
    this.deps.notifier.send({ STATUS: why, ERRNO: 10 });
    this.exitStatus = 1;
    this.beginStop();
  }

  private beginStop(): void {
    const supervisor = this.supervisor;
    const { clock, log } = this.deps;
    this.stop.startedAt = clock.now();
    this.stop.startedWall = clock.wallNow();
    this.stop.total = supervisor?.workerCount() ?? 0;
    try {
      markStopBegun(this.config.stateDir, this.stop.startedWall.toISOString());
    } catch (err) {
      log.warn(`cannot write the stop marker in ${this.config.stateDir}: ${(err as Error).message}; continuing the stop`);
    }
    // Longest time any worker may take, so systemd waits for vigild's own
    // deadlines, up to giving up on a worker that SIGKILL does not end.
    const longest =
      Math.max(0, ...(supervisor?.allPrograms() ?? []).map((p) => p.cfg.shutdown.timeoutMs + p.cfg.stackDumpGraceMs)) + UNKILLABLE_AFTER_MS;
    this.deps.notifier.send({ STOPPING: 1, STATUS: this.statusText(), EXTEND_TIMEOUT_USEC: (longest + STOP_SLACK_MS) * 1000 });
    log.info(`stopping ${this.stop.total} workers`);
    if (!supervisor) return this.dispatch("stopped");
    // One moment for every worker: the last one reached is not given more time.
    void supervisor.stop("stop", this.stop.startedAt).then(() => this.dispatch("stopped"));
  }

  private beginReload(): void {
    const { log, clock, notifier } = this.deps;
    // MONOTONIC_USEC lets systemd tell this reload from an earlier one.
    notifier.send({ RELOADING: 1, MONOTONIC_USEC: Math.round(clock.now() * 1000), STATUS: "reloading" });
    let next: Config;
    try {
      next = (this.deps.loadConfig ?? loadConfigFile)(this.config.file);
    } catch (err) {
      const errors = err instanceof ConfigError ? err.message.split("\n") : [(err as Error).message];
      for (const line of errors) log.error(line, { config: this.config.file });
      this.statusNote = `reload failed: ${errors[0]}; running the previous configuration`;
      log.warn(`reload failed; keeping the running configuration`);
      this.settleReloadWaiters({ ok: false, errors });
      this.dispatch("reload-done");
      return;
    }
    try {
      this.logSocketChange(this.sockets!.apply(next.sockets));
    } catch (err) {
      if (!(err instanceof SocketError)) throw err;
      log.error(`reload: ${err.message}`, { socket: err.socket, address: err.address });
      this.statusNote = `reload failed: ${err.message}; running the previous configuration`;
      log.warn(`reload failed; keeping the running configuration`);
      this.settleReloadWaiters({ ok: false, errors: [err.message] });
      this.dispatch("reload-done");
      return;
    }
    const ignored = this.unreloadable(next);
    if (ignored.length > 0) log.warn(`reload: ${ignored.join(", ")} changed; that takes a restart of vigild, keeping the running value`);
    if (next.log.level !== this.config.log.level) log.setLevel(next.log.level);
    this.config = { ...next, metrics: this.config.metrics, stateDir: this.config.stateDir, dbus: this.config.dbus };
    const { plan, settled } = this.supervisor!.applyConfig(this.config);
    for (const name of plan.added) this.metrics.addProgram(name);
    const summary = describePlan(plan);
    log.info(`reloading: ${summary}`, { config: this.config.file });
    this.statusNote = null;
    // READY=1 once the changes have settled, or when the slowest new worker's ready_timeout has passed.
    const bound = Math.max(1000, ...this.config.programs.map((p) => p.readyTimeoutMs)) + 1000;
    const timer = clock.at(clock.now() + bound, () => finish());
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      timer.cancel();
      log.info(`reload done: ${summary}`);
      this.settleReloadWaiters({ ok: true, summary });
      this.dispatch("reload-done");
    };
    void settled.then(finish);
  }

  /** Settings a reload cannot apply to a running vigild. */
  private unreloadable(next: Config): string[] {
    const out: string[] = [];
    if (JSON.stringify(next.metrics) !== JSON.stringify(this.config.metrics)) out.push("metrics.listen");
    if (next.stateDir !== this.config.stateDir) out.push("state_dir");
    if (next.dbus.bus !== this.config.dbus.bus) out.push("dbus.bus");
    if (next.log.format !== this.config.log.format) out.push("log.format");
    return out;
  }

  private settleReloadWaiters(result: ReloadResult): void {
    const waiters = this.reloadWaiters;
    this.reloadWaiters = [];
    for (const resolve of waiters) resolve(result);
  }

  private observe(event: SupervisorEvent): void {
    switch (event.type) {
      case "worker-hang":
        this.emitControl({ type: "worker-hung", program: event.program, worker: event.worker, pid: event.pid, phase: event.phase, afterMs: event.afterMs });
        return;
      case "teardown-switched":
        if (this.isStopping()) this.stop.switched.push(event.program);
        return;
      case "worker-exited": {
        this.emitControl({
          type: "worker-exited",
          program: event.program,
          worker: event.worker,
          pid: event.pid,
          code: event.code,
          signal: event.signal,
          outcome: event.outcome,
        });
        if (this.isStopping()) {
          const record = workerRecord(event);
          if (record) this.stop.records.push(record);
          this.queueStatus();
        }
        return;
      }
      default:
        return;
    }
  }

  private isStopping(): boolean {
    return this.state === "stopping" || this.state === "forcing";
  }

  private emitControl(event: ControlEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private async finish(): Promise<void> {
    const { clock, log } = this.deps;
    this.watchdog?.stop();
    this.dbusRetry?.cancel();
    const report = buildReport({
      records: this.stop.records,
      startedAt: this.stop.startedWall,
      endedAt: clock.wallNow(),
      durationMs: clock.now() - this.stop.startedAt,
      forcedBySignal: this.stop.forced,
      teardownSwitched: this.stop.switched,
    });
    try {
      saveReport(this.config.stateDir, report);
      clearStopMarker(this.config.stateDir);
    } catch (err) {
      log.error(`cannot write the last-shutdown report to ${this.config.stateDir}: ${(err as Error).message}`);
    }
    log.info(report.summary, { duration_ms: report.duration_ms, ...report.outcomes });
    // After a failed start, the reason stays in front: it is what `systemctl status` should show.
    this.deps.notifier.send({ STATUS: this.exitStatus !== 0 && this.statusNote ? `${this.statusNote}; ${report.summary}` : report.summary });
    this.supervisor?.close();
    this.sockets?.close();
    await Promise.all([this.server?.close(), this.dbus?.close()]);
    this.finished?.(this.exitStatus);
  }

  private loadPreviousReport(): void {
    const { log } = this.deps;
    const dir = this.config.stateDir;
    const marker = unfinishedStop(dir);
    if (marker) {
      log.warn(`the previous stop did not complete (vigild ${marker.pid}, begun ${marker.started_at}); its report is missing or older`);
      try {
        clearStopMarker(dir);
      } catch {
        // Reported again at the next start; nothing else depends on it.
      }
    }
    const loaded = loadReport(dir);
    switch (loaded.kind) {
      case "none":
        return;
      case "bad":
        log.warn(`ignoring the last-shutdown report in ${dir}: ${loaded.error}`);
        return;
      case "ok":
        this.lastReport = loaded.report;
        this.metrics.lastShutdown(loaded.report);
        log.info(`previous stop: ${loaded.report.summary}`, { ended_at: loaded.report.ended_at });
    }
  }

  private startWatchdog(): void {
    const intervalMs = this.deps.notifier.watchdogMs();
    const { log, clock } = this.deps;
    if (intervalMs === null) return;
    log.info(`systemd watchdog every ${formatDuration(intervalMs)}; pinging at half of it while healthy`);
    this.watchdog = new Watchdog({
      clock,
      intervalMs,
      maxLoopLagMs: this.config.watchdog.maxLoopLagMs,
      supervisionOverdueMs: () => this.supervisor?.monitor.overdueMs(clock.now()) ?? 0,
      ping: () => {
        this.deps.notifier.send({ WATCHDOG: 1 });
        this.metrics.watchdogPinged();
      },
      unhealthy: (why) => log.warn(`not pinging the systemd watchdog: ${why}`),
      lag: (ms) => this.metrics.eventLoopLag(ms),
    });
    this.watchdog.start();
  }

  private statusText(): string {
    const s = this.supervisor;
    return statusLine({
      state: this.state,
      ready: s?.readyWorkers() ?? 0,
      expected: s?.expectedWorkers() ?? 0,
      alive: s?.workerCount() ?? 0,
      stopTotal: this.stop.total,
      failed: s?.failedPrograms.map((p) => p.name) ?? [],
      note: this.statusNote,
    });
  }

  /** STATUS= at most once per turn of the loop, however many workers changed. */
  private queueStatus(): void {
    if (this.statusQueued) return;
    this.statusQueued = true;
    setImmediate(() => {
      this.statusQueued = false;
      if (this.state === "starting") {
        // While workers keep coming up, systemd waits for them past TimeoutStartSec:
        // each sign of progress buys the slowest ready_timeout again.
        const slowest = Math.max(0, ...this.config.programs.map((p) => p.readyTimeoutMs));
        this.deps.notifier.send({ STATUS: this.statusText(), EXTEND_TIMEOUT_USEC: (slowest + STOP_SLACK_MS) * 1000 });
      } else if (this.state !== "stopped") this.deps.notifier.send({ STATUS: this.statusText() });
      this.dbus?.propertiesMaybeChanged();
    });
  }

  private health(): { ok: boolean; detail: string } {
    const failed = this.supervisor?.failedPrograms.map((p) => p.name) ?? [];
    if (failed.length > 0) return { ok: false, detail: `failed programs: ${failed.join(", ")}` };
    return { ok: this.state === "running" || this.state === "reloading", detail: this.statusText() };
  }
}
