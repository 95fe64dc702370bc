// Bringing vigild's parts up, in order: its listening sockets (a start fails
// without them), the metrics endpoint, the supervisor with its edges, and the
// systemd watchdog. daemon.ts then starts the workers and the control plane.
import type { Clock } from "../clock/clock.js";
import type { Config } from "../config/types.js";
import type { EventSink } from "../core/events.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import { startMetricsServer, type MetricsServer } from "../metrics/server.js";
import type { Inherited } from "../sockets/inherited.js";
import type { SocketSet } from "../sockets/set.js";
import { Supervisor, realEdges, type Edges } from "../supervisor/supervisor.js";
import type { Notifier } from "../systemd/notify.js";
import type { Watchdog } from "../systemd/watchdog.js";
import { WORKER_OOM_SCORE_ADJ, workerNeedsOwnScore } from "../worker/oom-score.js";
import { chooseOutputRoute, type OutputRoute } from "../worker/journal.js";
import { openSockets } from "./sockets.js";
import { startWatchdog } from "./systemd-status.js";

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
  /** The OS, heartbeat file and OOM count the workers use; real ones by default. */
  edges?: Edges;
  /** Subscribes to the signals that stop and reload vigild; process signals by default. */
  onSignal?: (signal: "term" | "hup", handler: () => void) => void;
  /** Serve D-Bus and check the unit's TimeoutStopSec (off in tests with fakes). */
  systemBus?: boolean;
}

export interface Parts {
  sockets: SocketSet;
  server: MetricsServer | null;
  supervisor: Supervisor;
  watchdog: Watchdog | null;
}

/** Everything but the workers, up; null when a socket cannot be had (the start fails, STATUS= says why). */
export async function startParts(
  deps: DaemonDeps,
  config: Config,
  metrics: Metrics,
  emit: EventSink,
  hooks: { onChange: () => void; health: () => { ok: boolean; detail: string } },
): Promise<Parts | null> {
  const { log, clock } = deps;
  const sockets = openSockets(config, deps.inherited, log, deps.notifier);
  if (!sockets) return null;
  metrics.attachSockets(sockets);
  let server: MetricsServer | null = null;
  if (config.metrics.listen) {
    server = await startMetricsServer(metrics, config.metrics.listen, hooks.health);
    log.info(`metrics on ${server.url}`, { address: server.url });
  }
  const route = deps.outputRoute ?? chooseOutputRoute();
  log.info(
    route.kind === "journal"
      ? "worker output: straight to the journal, one stream per worker (identifier program/index)"
      : "worker output: through vigild's log, at most 1 MiB held per worker",
  );
  const edges = deps.edges ?? realEdges(clock);
  const ownOomScore = edges.host.ownOomScoreAdj();
  if (workerNeedsOwnScore(ownOomScore)) {
    log.info(`oom_score_adj: vigild ${ownOomScore}, workers ${WORKER_OOM_SCORE_ADJ}: when memory runs out, the kernel takes a worker before vigild`);
  }
  const supervisor = new Supervisor(config, {
    clock,
    emit,
    edges,
    onChange: hooks.onChange,
    output: { route, log: (lines, taken) => log.output(lines, taken) },
    sockets,
  });
  metrics.attach(supervisor);
  for (const program of config.programs) metrics.addProgram(program.name);
  const watchdog = startWatchdog({
    notifier: deps.notifier,
    clock,
    log,
    maxLoopLagMs: config.watchdog.maxLoopLagMs,
    supervisionOverdueMs: () => supervisor.monitor.overdueMs(clock.now()),
    metrics,
  });
  return { sockets, server, supervisor, watchdog };
}

/** SIGTERM/SIGINT and SIGHUP; the handlers only queue, the work runs on the next turn of the loop. */
export function processSignals(clock: Clock): NonNullable<DaemonDeps["onSignal"]> {
  return (signal, handler) => {
    const queued = (): void => clock.defer(handler);
    if (signal === "term") {
      process.on("SIGTERM", queued);
      process.on("SIGINT", queued);
    } else process.on("SIGHUP", queued);
  };
}
