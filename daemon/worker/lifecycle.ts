// The life of one worker process as a pure state machine:
//
//   starting -> running -> handlers -> teardown -> exited
//       |          |           |           |
//       +----------+--> dumping +--> killing +-> exited
//                                          |
//                                          +-> exited as unkillable
//
// step() takes the current state, one event and the time, and returns the
// next state plus the effects (data) that the edge module carries out. Each
// phase owns exactly one deadline (`deadline`); the edge re-arms its single
// timer whenever the deadline changes, so a late timer can never fire into a
// later phase. Why a worker ended is recorded once: the first cause wins.
import type { WorkerMessage } from "../../lib/protocol/index.js";
import { assertNever } from "../core/assert.js";
import type { StopRequest, Timeline } from "../core/record.js";
import type { FaultCause, HangPhase, ProtocolMode, ShutdownReason, TeardownMode, WorkerKind, WorkerPhase } from "../core/vocabulary.js";

export type { StopRequest, Timeline };

/** A worker told to skip teardown but still there this long after handlers-done is killed. */
export const SKIP_GRACE_MS = 100;

/**
 * How long after SIGKILL vigild waits for the exit before it gives up on the
 * worker as unkillable. SIGKILL cannot be caught, so only the kernel can hold
 * it back: a task in uninterruptible sleep (a dead NFS server, a FUSE daemon
 * that never answers, a frozen cgroup). How long the kernel takes to tear down
 * a killed process depends on the host (freeing many GiB of memory can take
 * seconds), not on anything a program's configuration describes, so this is
 * a fixed bound, not a setting; 5 s is far above a normal exit after SIGKILL.
 */
export const UNKILLABLE_AFTER_MS = 5_000;

export interface LifecycleConfig {
  protocol: ProtocolMode;
  readyTimeoutMs: number;
  stackDumpGraceMs: number;
  handlersTimeoutMs: number;
  teardownHangAfterMs: number;
  timeoutMs: number;
  signal: NodeJS.Signals;
}


export interface WorkerState {
  phase: WorkerPhase;
  kind: WorkerKind;
  ready: boolean;
  deadline: number | null;
  t: Timeline;
  stop: StopRequest | null;
  hang: { phase: HangPhase; at: number } | null;
  fault: FaultCause | null;
  /** Killed by vigild at a deadline (or by a forced stop), not exited on its own. */
  forced: boolean;
  /** The kill came from the skip grace, not from `timeout`. */
  killedForSkip: boolean;
  /**
   * Still there UNKILLABLE_AFTER_MS after SIGKILL: vigild stopped waiting and
   * counts it as exited (t.exitedAt is when it gave up), but the process may
   * still exist.
   */
  unkillable: boolean;
  exit: { code: number | null; signal: NodeJS.Signals | null; error: string | null } | null;
  status: string | null;
}

export type WorkerEvent =
  | { type: "message"; message: WorkerMessage }
  | { type: "heartbeat-missed"; lastBeatAt: number }
  | { type: "deadline" }
  /** `at`: when the stop was asked for; every worker of one stop counts from the same moment. */
  | { type: "stop"; reason: ShutdownReason; teardown: TeardownMode; at?: number }
  | { type: "force" }
  | { type: "exit"; code: number | null; signal: NodeJS.Signals | null }
  | { type: "spawn-failed"; error: string };

export type WorkerEffect =
  | { type: "send-shutdown"; reason: ShutdownReason; teardown: TeardownMode; handlersTimeoutMs: number; deadlineMs: number }
  | { type: "signal-group"; signal: NodeJS.Signals }
  | { type: "dump-stack" }
  | { type: "readiness"; ready: boolean }
  | { type: "hang"; phase: HangPhase; afterMs: number }
  | { type: "not-ready"; afterMs: number; timeoutMs: number }
  | { type: "status"; text: string }
  /** No exit UNKILLABLE_AFTER_MS after SIGKILL: vigild stops waiting for this worker. */
  | { type: "unkillable"; afterMs: number }
  | { type: "ignored"; event: string; phase: WorkerPhase }
  /** Running and speaking the protocol: its heartbeats are due from now on. */
  | { type: "watch-heartbeat" }
  | { type: "unwatch-heartbeat" }
  /**
   * Remember the process tree before a stop or kill signal goes out: a worker
   * that dies at once takes its children's parent links with it, and what
   * escaped its process group (setsid) is found only through them.
   */
  | { type: "snapshot-tree" }
  /** The worker was asked to stop (entered `handlers`). */
  | { type: "stopping"; stop: StopRequest };

export interface Step {
  next: WorkerState;
  effects: WorkerEffect[];
}

/** A worker whose process does not exist yet (or could not be spawned): not ready, no deadline. */
export function unspawnedState(now: number): WorkerState {
  return initialState(now, { ...UNSPAWNED_CFG }).next;
}

const UNSPAWNED_CFG: LifecycleConfig = {
  protocol: "on",
  readyTimeoutMs: 0,
  stackDumpGraceMs: 0,
  handlersTimeoutMs: 0,
  teardownHangAfterMs: 0,
  timeoutMs: 0,
  signal: "SIGTERM",
};

export function initialState(now: number, cfg: LifecycleConfig): Step {
  const t: Timeline = {
    spawnedAt: now,
    readyAt: null,
    stopRequestedAt: null,
    handlersDoneAt: null,
    teardownAt: null,
    killedAt: null,
    exitedAt: null,
  };
  const base: WorkerState = {
    phase: "starting",
    kind: "unknown",
    ready: false,
    deadline: null,
    t,
    stop: null,
    hang: null,
    fault: null,
    forced: false,
    killedForSkip: false,
    unkillable: false,
    exit: null,
    status: null,
  };
  switch (cfg.protocol) {
    case "on":
      return { next: { ...base, kind: "protocol", deadline: now + cfg.readyTimeoutMs }, effects: [] };
    case "auto":
      // Plain until it speaks, so ready once spawned: a worker that never heard of vigil runs as it would anywhere.
      return { next: { ...base, phase: "running", ready: true, t: { ...t, readyAt: now } }, effects: [{ type: "readiness", ready: true }] };
    case "off":
      return {
        next: { ...base, phase: "running", kind: "plain", ready: true, t: { ...t, readyAt: now } },
        effects: [{ type: "readiness", ready: true }],
      };
  }
}

const LIVE_BEFORE_STOP: readonly WorkerPhase[] = ["starting", "running"];

export function step(state: WorkerState, event: WorkerEvent, now: number, cfg: LifecycleConfig): Step {
  return withPhaseEffects(state, transition(state, event, now, cfg));
}

/** What follows from entering or leaving a phase, whatever the event that did it. */
function withPhaseEffects(before: WorkerState, result: Step): Step {
  const { next } = result;
  if (before.phase === next.phase) return result;
  const first: WorkerEffect[] = next.phase === "handlers" || next.phase === "killing" ? [{ type: "snapshot-tree" }] : [];
  const after: WorkerEffect[] = [];
  if (next.phase === "running" && next.kind === "protocol") after.push({ type: "watch-heartbeat" });
  else if (before.phase === "running") after.push({ type: "unwatch-heartbeat" });
  if (next.phase === "handlers" && next.stop) after.push({ type: "stopping", stop: next.stop });
  return { next, effects: [...first, ...result.effects, ...after] };
}

function transition(state: WorkerState, event: WorkerEvent, now: number, cfg: LifecycleConfig): Step {
  switch (event.type) {
    case "message":
      return onMessage(state, event.message, now, cfg);
    case "heartbeat-missed":
      if (state.phase !== "running" || state.kind !== "protocol") return ignored(state, event.type);
      return enterDumping({ ...state, hang: state.hang ?? { phase: "running", at: now }, fault: "heartbeat" }, now, cfg, [
        { type: "hang", phase: "running", afterMs: now - event.lastBeatAt },
      ]);
    case "deadline":
      return onDeadline(state, now, cfg);
    case "stop":
      return onStop(state, event.reason, event.teardown, Math.min(event.at ?? now, now), now, cfg);
    case "force":
      if (state.phase === "exited" || state.phase === "killing") return { next: state, effects: [] };
      return enterKilling({ ...state, forced: true }, now);
    case "exit":
      return enterExited(state, now, { code: event.code, signal: event.signal, error: null });
    case "spawn-failed":
      return enterExited(state, now, { code: null, signal: null, error: event.error });
    default:
      return assertNever(event, "worker event");
  }
}

function enterExited(state: WorkerState, now: number, exit: NonNullable<WorkerState["exit"]>): Step {
  // The first end wins: the late exit of a worker given up on as unkillable changes nothing here.
  if (state.phase === "exited") return { next: state, effects: [] };
  return {
    next: { ...state, phase: "exited", deadline: null, ready: false, t: { ...state.t, exitedAt: now }, exit },
    effects: state.ready ? [{ type: "readiness", ready: false }] : [],
  };
}

function ignored(state: WorkerState, what: string): Step {
  return { next: state, effects: [{ type: "ignored", event: what, phase: state.phase }] };
}

function onMessage(state: WorkerState, message: WorkerMessage, now: number, cfg: LifecycleConfig): Step {
  const spoke: WorkerState = state.kind === "unknown" ? { ...state, kind: "protocol" } : state;
  switch (message.type) {
    case "hello":
      if (!LIVE_BEFORE_STOP.includes(state.phase)) return { next: spoke, effects: [] };
      if (state.kind === "unknown" && state.ready && state.phase === "running") {
        // An auto worker turned out to speak the protocol before saying
        // ready: from now on it must say ready within ready_timeout of its spawn.
        return {
          next: { ...spoke, phase: "starting", ready: false, t: { ...state.t, readyAt: null }, deadline: state.t.spawnedAt + cfg.readyTimeoutMs },
          effects: [{ type: "readiness", ready: false }],
        };
      }
      return { next: spoke, effects: [] };
    case "ready":
      if (state.phase === "starting") {
        return {
          next: { ...spoke, phase: "running", ready: true, deadline: null, t: { ...state.t, readyAt: now } },
          effects: [{ type: "readiness", ready: true }],
        };
      }
      return { next: spoke, effects: [] };
    case "status":
      return { next: { ...spoke, status: message.text }, effects: [{ type: "status", text: message.text }] };
    case "handlers-done":
      if (state.phase !== "handlers") return ignored(spoke, "handlers-done");
      return enterTeardown(spoke, now, cfg, message.timedOut);
    case "teardown":
      if (state.phase === "handlers") {
        const entered = enterTeardown(spoke, now, cfg, false);
        return { next: withTeardownBegun(entered.next, now, cfg), effects: entered.effects };
      }
      if (state.phase !== "teardown") return ignored(spoke, "teardown");
      return { next: withTeardownBegun(spoke, now, cfg), effects: [] };
    default:
      return assertNever(message, "worker message");
  }
}

function onStop(state: WorkerState, reason: ShutdownReason, teardown: TeardownMode, stopAt: number, now: number, cfg: LifecycleConfig): Step {
  if (state.stop !== null || state.phase === "exited" || state.phase === "killing") return { next: state, effects: [] };
  // Reached late in a stop of many workers, this one has that much less time.
  const late = now - stopAt;
  const t = { ...state.t, stopRequestedAt: stopAt };
  if (state.phase === "dumping") {
    // Already being killed for a hang: the stop only records that it was asked.
    return { next: { ...state, t, stop: { reason, teardown, signal: null } }, effects: [] };
  }
  const deadline = stopAt + Math.min(cfg.handlersTimeoutMs, cfg.timeoutMs);
  if (state.kind === "protocol") {
    return {
      next: { ...state, phase: "handlers", t, stop: { reason, teardown, signal: null }, deadline },
      effects: [
        {
          type: "send-shutdown",
          reason,
          teardown,
          handlersTimeoutMs: Math.max(0, cfg.handlersTimeoutMs - late),
          deadlineMs: Math.max(0, cfg.timeoutMs - late),
        },
      ],
    };
  }
  return {
    next: { ...state, phase: "handlers", kind: "plain", t, stop: { reason, teardown, signal: cfg.signal }, deadline },
    effects: [{ type: "signal-group", signal: cfg.signal }],
  };
}

function hardDeadline(state: WorkerState, cfg: LifecycleConfig): number {
  return (state.t.stopRequestedAt ?? Infinity) + cfg.timeoutMs;
}

function onDeadline(state: WorkerState, now: number, cfg: LifecycleConfig): Step {
  if (state.deadline === null || now < state.deadline) return { next: state, effects: [] };
  switch (state.phase) {
    case "starting":
      return enterDumping({ ...state, fault: "ready-timeout" }, now, cfg, [
        { type: "not-ready", afterMs: now - state.t.spawnedAt, timeoutMs: cfg.readyTimeoutMs },
      ]);
    case "dumping":
      return enterKilling(state, now);
    case "killing":
      return enterUnkillable(state, now);
    case "handlers": {
      if (now >= hardDeadline(state, cfg)) return enterKilling({ ...state, forced: true }, now);
      // Past handlers_timeout: report the hang now, kill at `timeout`.
      const phase: HangPhase = state.kind === "protocol" ? "handlers" : "signal";
      return reportStopHang(state, phase, now, cfg, now - (state.t.stopRequestedAt ?? now));
    }
    case "teardown": {
      if (state.stop?.teardown === "skip" && now < hardDeadline(state, cfg)) {
        return enterKilling({ ...state, killedForSkip: true }, now);
      }
      if (now >= hardDeadline(state, cfg) || state.hang?.phase === "teardown") {
        return enterKilling({ ...state, forced: true }, now);
      }
      const begun = state.t.teardownAt ?? state.t.handlersDoneAt ?? now;
      return reportStopHang(state, "teardown", now, cfg, now - begun);
    }
    case "running":
    case "exited":
      return { next: { ...state, deadline: null }, effects: [] };
  }
}

function reportStopHang(state: WorkerState, phase: HangPhase, now: number, cfg: LifecycleConfig, afterMs: number): Step {
  const effects: WorkerEffect[] = [{ type: "hang", phase, afterMs }];
  // A plain worker never asked for SIGUSR2; its default action would kill it.
  if (state.kind === "protocol") effects.push({ type: "dump-stack" });
  return {
    next: { ...state, hang: state.hang ?? { phase, at: now }, deadline: hardDeadline(state, cfg) },
    effects,
  };
}

function enterDumping(state: WorkerState, now: number, cfg: LifecycleConfig, effects: WorkerEffect[]): Step {
  const readiness: WorkerEffect[] = state.ready ? [{ type: "readiness", ready: false }] : [];
  if (cfg.stackDumpGraceMs <= 0 || state.kind !== "protocol") {
    const killed = enterKilling({ ...state, ready: false }, now);
    return { next: killed.next, effects: [...effects, ...readiness, ...killed.effects] };
  }
  return {
    next: { ...state, phase: "dumping", ready: false, deadline: now + cfg.stackDumpGraceMs },
    effects: [...effects, ...readiness, { type: "dump-stack" }],
  };
}

function enterKilling(state: WorkerState, now: number): Step {
  return {
    next: { ...state, phase: "killing", ready: false, deadline: now + UNKILLABLE_AFTER_MS, t: { ...state.t, killedAt: now } },
    effects: [{ type: "signal-group", signal: "SIGKILL" }, ...(state.ready ? [{ type: "readiness" as const, ready: false }] : [])],
  };
}

/**
 * Waiting longer would hold a stop of vigild until systemd's TimeoutStopSec
 * and a restart of the program forever: the worker counts as exited from here
 * on, with no exit status, and the edge keeps what the process could still
 * touch (its heartbeat slot) until it is really gone.
 */
function enterUnkillable(state: WorkerState, now: number): Step {
  const afterMs = now - (state.t.killedAt ?? now);
  return {
    next: { ...state, phase: "exited", unkillable: true, deadline: null, ready: false, t: { ...state.t, exitedAt: now } },
    effects: [{ type: "unkillable", afterMs }],
  };
}

function enterTeardown(state: WorkerState, now: number, cfg: LifecycleConfig, handlersTimedOut: boolean): Step {
  let next: WorkerState = { ...state, phase: "teardown", t: { ...state.t, handlersDoneAt: now } };
  const effects: WorkerEffect[] = [];
  if (handlersTimedOut && next.hang === null) {
    next = { ...next, hang: { phase: "handlers", at: now } };
    effects.push({ type: "hang", phase: "handlers", afterMs: now - (state.t.stopRequestedAt ?? now) });
  }
  const hard = hardDeadline(next, cfg);
  const soft = next.stop?.teardown === "skip" ? now + SKIP_GRACE_MS : now + cfg.teardownHangAfterMs;
  return { next: { ...next, deadline: Math.min(soft, hard) }, effects };
}

function withTeardownBegun(state: WorkerState, now: number, cfg: LifecycleConfig): WorkerState {
  if (state.t.teardownAt !== null) return state;
  const t = { ...state.t, teardownAt: now };
  if (state.stop?.teardown === "skip" || state.hang?.phase === "teardown") return { ...state, t };
  return { ...state, t, deadline: Math.min(now + cfg.teardownHangAfterMs, hardDeadline(state, cfg)) };
}
