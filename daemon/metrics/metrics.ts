// The Prometheus metrics of vigild. Counters move with supervisor events;
// gauges of current state are computed at scrape time from the supervisor,
// so they can never drift from what is really running.
import client from "prom-client";
import { registerDefaultMetrics } from "./defaults.js";
import type { SupervisorEvent } from "../core/events.js";
import type { Supervisor } from "../supervisor/supervisor.js";
import { assertNever } from "../core/assert.js";
import { HANG_PHASES, OUTCOMES, RESTART_REASONS, WORKER_STATES, type WorkerStateLabel } from "../core/vocabulary.js";

import type { LastShutdownReport } from "../shutdown/report.js";
import type { SocketQueue } from "../sockets/set.js";

export class Metrics {
  readonly registry = new client.Registry();
  private supervisor: Supervisor | null = null;
  private readonly programsSeen = new Set<string>();
  private readonly restarts: client.Counter<"program" | "reason">;
  private readonly hangs: client.Counter<"program" | "phase">;
  private readonly protocolErrors: client.Counter<"program">;
  private readonly leaked: client.Counter<"program">;
  private readonly outputDropped: client.Counter<"program">;
  private sockets: { queued(): SocketQueue[] } | null = null;
  private readonly unkillable: client.Counter<"program">;
  private readonly shutdownSeconds: client.Histogram<"program" | "outcome">;
  private readonly teardownSeconds: client.Histogram<"program">;
  private readonly watchdogPings: client.Counter;
  private readonly loopLag: client.Gauge;

  constructor() {
    const registers = [this.registry];
    registerDefaultMetrics(this.registry);
    const self = this;
    new client.Gauge({
      name: "vigil_workers",
      help: "Worker slots by program and state: live workers by phase; empty slots as backoff (waiting to be restarted), failed (the program gave up) or stopped (ended and left down).",
      labelNames: ["program", "state"],
      registers,
      collect() {
        this.reset();
        for (const program of self.supervisor?.allPrograms() ?? []) {
          const counts = new Map<WorkerStateLabel, number>(WORKER_STATES.map((s) => [s, 0]));
          const add = (label: WorkerStateLabel): void => void counts.set(label, (counts.get(label) ?? 0) + 1);
          for (const slot of program.slots()) {
            for (const { label } of slot.workers) add(label);
            if (slot.empty !== null) add(slot.empty);
          }
          for (const [state, n] of counts) this.set({ program: program.name, state }, n);
        }
      },
    });
    this.restarts = new client.Counter({
      name: "vigil_worker_restarts_total",
      help: "Workers restarted, by why: exit (ended by itself), crash (non-zero status or signal), oom (OOM-killed), hang, recycle, reload, restart (asked for).",
      labelNames: ["program", "reason"],
      registers,
    });
    this.hangs = new client.Counter({
      name: "vigil_worker_hangs_total",
      help: "Hangs detected, by phase: running (missed heartbeat), handlers, teardown (interpreter teardown too long), signal (plain worker ignored its stop signal).",
      labelNames: ["program", "phase"],
      registers,
    });
    this.protocolErrors = new client.Counter({
      name: "vigil_protocol_errors_total",
      help: "Lines on the worker protocol socket that were not valid messages (ignored).",
      labelNames: ["program"],
      registers,
    });
    this.leaked = new client.Counter({
      name: "vigil_leaked_processes_total",
      help: "Processes a stopped worker left outside its process group (setsid), found through /proc and killed.",
      labelNames: ["program"],
      registers,
    });
    this.outputDropped = new client.Counter({
      name: "vigil_worker_output_dropped_bytes_total",
      help: "Bytes of worker stdout/stderr vigild dropped because its log fell more than 1 MiB behind that worker (0 under journald: workers then write to the journal themselves).",
      labelNames: ["program"],
      registers,
    });
    new client.Gauge({
      name: "vigil_socket_connections_queued",
      help: "Connections waiting in the accept queue of a listening socket under sockets: (TCP only: Linux reports no queue length for unix sockets), read at scrape time.",
      labelNames: ["socket"],
      registers,
      collect() {
        this.reset();
        for (const { socket, queued } of self.sockets?.queued() ?? []) this.set({ socket }, queued);
      },
    });
    this.unkillable = new client.Counter({
      name: "vigil_worker_unkillable_total",
      help: "Workers still alive some seconds after SIGKILL (uninterruptible sleep: a dead NFS or FUSE mount, a frozen cgroup); vigild stopped waiting for them.",
      labelNames: ["program"],
      registers,
    });
    // 10 ms .. 60 s: from a clean skip to a stop that hit a long timeout.
    const buckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    this.shutdownSeconds = new client.Histogram({
      name: "vigil_worker_shutdown_seconds",
      help: "Time from a worker's stop request to its exit, by outcome (clean, skipped, forced; unkillable: to when vigild gave up on it).",
      labelNames: ["program", "outcome"],
      buckets,
      registers,
    });
    this.teardownSeconds = new client.Histogram({
      name: "vigil_worker_teardown_seconds",
      help: "Time a worker spent in its interpreter's own teardown (teardown: destroy): from its teardown message (or handlers-done) to its exit.",
      labelNames: ["program"],
      buckets,
      registers,
    });
    this.watchdogPings = new client.Counter({
      name: "vigil_watchdog_pings_total",
      help: "WATCHDOG=1 notifications sent to systemd; they stop while vigild is unhealthy (loop lag, wedged supervision).",
      registers,
    });
    this.loopLag = new client.Gauge({
      name: "vigil_event_loop_lag_seconds",
      help: "How late vigild's most recent timer fired: its event-loop lag, measured without a sampler.",
      registers,
    });

  }

  attach(supervisor: Supervisor): void {
    this.supervisor = supervisor;
  }

  attachSockets(sockets: { queued(): SocketQueue[] }): void {
    this.sockets = sockets;
  }

  watchdogPinged(): void {
    this.watchdogPings.inc();
  }

  eventLoopLag(ms: number): void {
    this.loopLag.set(ms / 1000);
  }

  /** Registered only when there is a report: without one, 0 would read as "the last stop took 0 s". */
  lastShutdown(report: LastShutdownReport): void {
    const registers = [this.registry];
    new client.Gauge({
      name: "vigil_last_shutdown_seconds",
      help: "How long the previous stop of vigild took, from its last-shutdown report.",
      registers,
    }).set(report.duration_ms / 1000);
    const workers = new client.Gauge({
      name: "vigil_last_shutdown_workers",
      help: "Workers of the previous stop of vigild by outcome (clean, skipped, forced, unkillable), from its last-shutdown report.",
      labelNames: ["outcome"],
      registers,
    });
    for (const outcome of OUTCOMES) workers.set({ outcome }, report.outcomes[outcome] ?? 0);
  }

  /**
   * Every series of a program's counters and histograms, at 0: Prometheus's
   * increase() cannot see a series' first event when that event creates it.
   */
  addProgram(program: string): void {
    // Once per name for vigild's life: series outlive a program a reload removed and re-added.
    if (this.programsSeen.has(program)) return;
    this.programsSeen.add(program);
    for (const reason of RESTART_REASONS) this.restarts.inc({ program, reason }, 0);
    for (const phase of HANG_PHASES) this.hangs.inc({ program, phase }, 0);
    this.protocolErrors.inc({ program }, 0);
    this.leaked.inc({ program }, 0);
    this.outputDropped.inc({ program }, 0);
    this.unkillable.inc({ program }, 0);
    for (const outcome of OUTCOMES) this.shutdownSeconds.zero({ program, outcome });
    this.teardownSeconds.zero({ program });
  }

  readonly onEvent = (event: SupervisorEvent): void => {
    switch (event.type) {
      case "worker-restart-scheduled":
        this.restarts.inc({ program: event.program, reason: event.reason });
        return;
      case "worker-hang":
        this.hangs.inc({ program: event.program, phase: event.phase });
        return;
      case "protocol-error":
        this.protocolErrors.inc({ program: event.program });
        return;
      case "worker-output-dropped":
        this.outputDropped.inc({ program: event.program }, event.bytes);
        return;
      case "worker-leaked":
        this.leaked.inc({ program: event.program }, event.pids.length);
        return;
      case "worker-unkillable":
        this.unkillable.inc({ program: event.program });
        return;
      case "worker-exited":
        if (event.outcome !== null && event.durations.totalMs !== null) {
          this.shutdownSeconds.observe({ program: event.program, outcome: event.outcome }, event.durations.totalMs / 1000);
        }
        if (event.durations.teardownMs !== null) {
          this.teardownSeconds.observe({ program: event.program }, event.durations.teardownMs / 1000);
        }
        return;
      // Counted nowhere: a new event kind must be placed in one list or the other.
      case "worker-spawned":
      case "worker-spawn-failed":
      case "worker-ready":
      case "worker-status":
      case "worker-not-ready":
      case "worker-stopping":
      case "worker-unkillable-gone":
      case "worker-recycling":
      case "worker-starved":
      case "teardown-switched":
      case "event-ignored":
      case "program-failed":
      case "program-stopped":
        return;
      default:
        assertNever(event, "supervisor event");
    }
  };
}
