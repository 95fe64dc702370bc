// A reload (SIGHUP, vigilctl reload): read the file again, open what new
// sockets it names, and hand the new configuration to the supervisor as a
// difference. Any error keeps the running configuration whole.
import type { Clock } from "../clock/clock.js";
import { ConfigError } from "../config/load.js";
import type { Config } from "../config/types.js";
import type { Logger } from "../log/logger.js";
import { SocketError } from "../sockets/bind.js";
import type { SocketSet } from "../sockets/set.js";
import { describePlan, type ReloadPlan, type Supervisor } from "../supervisor/supervisor.js";

export type Prepared = { ok: true; config: Config } | { ok: false; errors: string[] };

/** The configuration to run next, or why there is none; on success its sockets are open. */
export function prepareReload(current: Config, load: (file: string) => Config, sockets: SocketSet, log: Logger): Prepared {
  let next: Config;
  try {
    next = load(current.file);
  } catch (err) {
    const errors = err instanceof ConfigError ? err.message.split("\n") : [(err as Error).message];
    for (const line of errors) log.error(line, { config: current.file });
    return { ok: false, errors };
  }
  try {
    const change = sockets.apply(next.sockets);
    for (const note of change.notes) log.info(note);
    for (const warning of change.warnings) log.warn(warning);
  } catch (err) {
    if (!(err instanceof SocketError)) throw err;
    log.error(`reload: ${err.message}`, { socket: err.socket, address: err.address });
    return { ok: false, errors: [err.message] };
  }
  const ignored = unreloadable(current, next);
  if (ignored.length > 0) log.warn(`reload: ${ignored.join(", ")} changed; that takes a restart of vigild, keeping the running value`);
  if (next.log.level !== current.log.level) log.setLevel(next.log.level);
  return { ok: true, config: { ...next, metrics: current.metrics, stateDir: current.stateDir, dbus: current.dbus, log: { ...next.log, format: current.log.format } } };
}

/** Settings a reload cannot apply to a running vigild. */
export function unreloadable(current: Config, next: Config): string[] {
  const out: string[] = [];
  if (JSON.stringify(next.metrics) !== JSON.stringify(current.metrics)) out.push("metrics.listen");
  if (next.stateDir !== current.stateDir) out.push("state_dir");
  if (next.dbus.bus !== current.dbus.bus) out.push("dbus.bus");
  if (next.log.format !== current.log.format) out.push("log.format");
  return out;
}

/**
 * Applies `config` to the supervisor; `done` runs once, when the changes
 * have settled or when the slowest new worker's ready_timeout has passed,
 * whichever is first (READY=1 must not wait on a worker that never gets ready).
 */
export function applyReload(
  supervisor: Supervisor,
  config: Config,
  clock: Clock,
  done: (summary: string) => void,
): { plan: ReloadPlan; summary: string } {
  const { plan, settled } = supervisor.applyConfig(config);
  const summary = describePlan(plan);
  const bound = Math.max(1000, ...config.programs.map((p) => p.readyTimeoutMs)) + 1000;
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    timer.cancel();
    done(summary);
  };
  const timer = clock.at(clock.now() + bound, finish);
  void settled.then(finish);
  return { plan, summary };
}
