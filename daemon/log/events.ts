// Each supervisor event as one log line: the level says how much an operator
// should care, the text says what happens next.
import { formatDuration } from "../config/duration.js";
import { assertNever } from "../core/assert.js";
import type { SupervisorEvent } from "../core/events.js";
import type { HangPhase } from "../core/vocabulary.js";
import type { Fields, Logger } from "./logger.js";

export function logEvent(log: Logger, event: SupervisorEvent): void {
  switch (event.type) {
    case "worker-spawned":
      return log.info(`${name(event)} spawned`, ref(event));
    case "worker-spawn-failed":
      return log.error(`${name(event)} could not be started: ${event.error}`, ref(event));
    case "worker-ready":
      return log.info(`${name(event)} ready after ${formatDuration(event.afterMs)}`, { ...ref(event), after_ms: Math.round(event.afterMs) });
    case "worker-status":
      return log.debug(`${name(event)} status: ${event.text}`, ref(event));
    case "worker-output-dropped":
      // One line per episode; the metric counts every byte.
      if (!event.first) return;
      return log.warn(
        `${name(event)} writes output faster than the log takes it; dropping its output until the log catches up (counted in vigil_worker_output_dropped_bytes_total)`,
        ref(event),
      );
    case "worker-hang":
      return log.warn(
        `${name(event)} hung in phase ${event.phase} for ${formatDuration(event.afterMs)}${hangNext(event.phase)}`,
        { ...ref(event), phase: event.phase, after_ms: Math.round(event.afterMs) },
      );
    case "worker-not-ready":
      return log.warn(`${name(event)} did not say ready within ${formatDuration(event.timeoutMs)} (ready_timeout); killing it`, {
        ...ref(event),
        after_ms: Math.round(event.afterMs),
      });
    case "worker-stopping":
      return log.debug(
        `${name(event)} stopping (${event.reason})${event.signal ? ` with ${event.signal}` : `, teardown ${event.teardown}`}`,
        { ...ref(event), reason: event.reason },
      );
    case "worker-exited": {
      const how = event.unkillable
        ? "unkillable: still there after SIGKILL"
        : (event.error ?? (event.signal ? `killed by ${event.signal}` : `exited with status ${event.code}`));
      const { totalMs, handlersMs, teardownMs } = event.durations;
      const fields: Fields = {
        ...ref(event),
        code: event.code,
        signal: event.signal,
        outcome: event.outcome,
        hang: event.hang,
        shutdown_ms: ms(totalMs),
        handlers_ms: ms(handlersMs),
        teardown_ms: ms(teardownMs),
        uptime_ms: ms(event.uptimeMs),
      };
      if (event.outcome !== null) {
        return log.info(
          `${name(event)} stopped ${event.outcome} in ${formatDuration(event.durations.totalMs ?? 0)} (${how})`,
          fields,
        );
      }
      const outside = event.signal === "SIGKILL" && event.timeline.killedAt === null ? " (not by vigild: the OOM killer or kill -9)" : "";
      return log.warn(`${name(event)} ${how}${outside} after ${formatDuration(event.uptimeMs)}`, fields);
    }
    case "worker-restart-scheduled":
      return log.info(`${name(event)} restarting in ${formatDuration(event.delayMs)} (${event.reason})`, {
        ...ref(event),
        reason: event.reason,
        delay_ms: event.delayMs,
      });
    case "protocol-error":
      return log.warn(`${name(event)} protocol error: ${event.error}; ignoring the line`, ref(event));
    case "event-ignored":
      return log.debug(`${name(event)} ${event.event} in phase ${event.phase}, ignoring`, ref(event));
    case "worker-starved":
      return log.warn(
        `${name(event)} missed its heartbeat by ${formatDuration(event.afterMs)}: suspected starvation (CPU pressure ${event.pressure.toFixed(0)}% over 10 s); giving it one more heartbeat_timeout before calling it hung`,
        { ...ref(event), after_ms: Math.round(event.afterMs), cpu_pressure: event.pressure },
      );
    case "worker-leaked":
      return log.warn(
        `${name(event)} left ${event.pids.length} process(es) outside its process group (setsid): ${event.pids.join(", ")}; killed them`,
        { ...ref(event), leaked: event.pids.length },
      );
    case "worker-unkillable": {
      const where = event.state === null ? "" : ` (state ${event.state}${event.wchan ? ` in ${event.wchan}` : ""})`;
      return log.error(
        `${name(event)} unkillable: still there ${formatDuration(event.afterMs)} after SIGKILL${where}, ` +
          "in uninterruptible sleep (a dead NFS or FUSE mount, a frozen cgroup); no longer waiting for it: " +
          "its slot is released as if it had exited (a stop goes on, the program may start a new worker), " +
          "its heartbeat slot stays reserved, and the kernel ends it once whatever holds it lets go",
        { ...ref(event), after_ms: Math.round(event.afterMs), proc_state: event.state, wchan: event.wchan },
      );
    }
    case "worker-unkillable-gone": {
      const how = event.signal ? `killed by ${event.signal}` : `exited with status ${event.code}`;
      return log.info(`${name(event)}, given up on as unkillable ${formatDuration(event.afterMs)} ago, is gone (${how}); its heartbeat slot is free again`, {
        ...ref(event),
        after_ms: Math.round(event.afterMs),
        code: event.code,
        signal: event.signal,
      });
    }
    case "worker-recycling":
      return log.info(`${name(event)} recycling: ${event.why}; replacing it before it stops`, ref(event));
    case "teardown-switched":
      return log.warn(
        `program ${event.program}: teardown auto switches to skip: ${name(event)} hung in interpreter teardown for ${formatDuration(event.afterMs)} (its stack is logged above); later stops skip teardown`,
        { ...ref(event), after_ms: Math.round(event.afterMs) },
      );
    case "program-failed":
      return log.error(`program ${event.program} FAILED: ${event.why}; not restarting it`, { program: event.program });
    case "program-stopped":
      return log.debug(`program ${event.program} stopped`, { program: event.program });
    default:
      return assertNever(event, "supervisor event");
  }
}

function ms(value: number | null): number | null {
  return value === null ? null : Math.round(value);
}

function name(event: { program: string; worker: number; pid: number | null }): string {
  return `${event.program}/${event.worker}${event.pid !== null ? `[${event.pid}]` : ""}`;
}

function ref(event: { program: string; worker: number; pid: number | null }): Fields {
  return { program: event.program, worker: event.worker, pid: event.pid };
}

function hangNext(phase: HangPhase): string {
  switch (phase) {
    case "running":
      return "; asking for a stack dump, then killing it";
    case "handlers":
      return "; asking for a stack dump, the stop goes on";
    case "teardown":
      return "; asking for a stack dump, killing it at the stop timeout";
    case "signal":
      return "; killing it at the stop timeout";
  }
}
