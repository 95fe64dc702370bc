// One program as a pure state machine: `instances` slots, each holding its
// current worker, the worker that one replaces (until the new one is ready),
// a pending restart (backoff) and the current worker's max_age; plus the
// program's own phase:
//
//   starting -> running -> stopping -> stopped
//       |          |
//       +----------+--> failed   (restart limit hit, or a command that cannot run)
//
// step() takes the state, one event and the time and returns the next state
// and the effects that program.ts carries out (spawn, stop a worker, tell).
// Workers are known here only by an id, their slot, and whether they are
// ready. Every wait is a time in the state: `deadline` is the earliest, and
// the edge keeps one timer on it, as the worker lifecycle does.
import { assertNever } from "../core/assert.js";
import type { HangPhase, ProgramStateName, ReplaceReason, RestartReason, ShutdownReason, TeardownMode } from "../core/vocabulary.js";
import type { ProgramConfig, TeardownSetting } from "../config/types.js";
import { formatDuration } from "../config/duration.js";
import type { WorkerState } from "../worker/lifecycle.js";
import { nextRestartDelay, pruneRestarts, ranWell, restartLimitHit, shouldRestart, unexpectedEndReason } from "../worker/policy.js";

/** How often a program with max_memory samples its workers' process trees. */
export const MEMORY_CHECK_MS = 5_000;

export type WorkerId = number;

export interface SlotState {
  current: WorkerId | null;
  /** The worker `current` replaces: stopped with `reason` once `current` is ready. */
  retiring: { id: WorkerId; reason: ShutdownReason } | null;
  /** When the restart waiting in backoff spawns. */
  backoffUntil: number | null;
  /** When `current` reaches max_age. */
  recycle: { at: number; id: WorkerId } | null;
  /** Consecutive failures, for the backoff. */
  failures: number;
  restarts: number;
}

/** A rolling replacement of workers on shared sockets: one slot at a time. */
export interface Roll {
  generation: number;
  reason: ReplaceReason;
  /** The next slot to replace, and the last one (exclusive). */
  next: number;
  end: number;
  /** Workers to see gone before the next slot is replaced. */
  waiting: WorkerId[];
}

export interface ProgramState {
  cfg: ProgramConfig;
  phase: ProgramStateName;
  slots: SlotState[];
  /** Every live worker: its slot, whether it is ready, when it was spawned. */
  live: Record<WorkerId, { slot: number; ready: boolean; spawnedAt: number }>;
  nextId: WorkerId;
  teardown: TeardownMode;
  /** When each restart inside the restart limit's window happened. */
  history: number[];
  stopping: ShutdownReason | null;
  failure: string | null;
  restarts: Partial<Record<RestartReason, number>>;
  /** Counts replacements, so a rolling one overtaken by a newer one ends. */
  generation: number;
  roll: Roll | null;
  /** Recycles waiting for another slot's replacement to finish (shared sockets only), by slot. */
  deferred: Array<{ slot: number; id: WorkerId; why: string }>;
  memoryCheckAt: number | null;
  /** How many slots were ready when last reported, so each change is reported once. */
  reportedReady: number;
  deadline: number | null;
}

export type ProgramEvent =
  | { type: "start" }
  /** `at`: when vigild's stop began; every worker counts from it. */
  | { type: "stop"; reason: ShutdownReason; at?: number }
  | { type: "force" }
  /** Replace every worker (restart, reload), with `cfg` when it changed. */
  | { type: "replace"; reason: ReplaceReason; cfg: ProgramConfig }
  | { type: "readiness"; id: WorkerId; ready: boolean }
  | { type: "hang"; id: WorkerId; phase: HangPhase; afterMs: number }
  | { type: "ended"; id: WorkerId; state: WorkerState; oom: boolean }
  | { type: "memory"; samples: ReadonlyArray<{ id: WorkerId; rssBytes: number }> }
  | { type: "deadline" };

export type ProgramEffect =
  | { type: "spawn"; id: WorkerId; slot: number; teardown: TeardownMode }
  | { type: "stop-worker"; id: WorkerId; reason: ShutdownReason; teardown: TeardownMode; at?: number }
  | { type: "force-worker"; id: WorkerId }
  | { type: "restart-scheduled"; id: WorkerId; slot: number; reason: RestartReason; delayMs: number }
  | { type: "recycling"; id: WorkerId; why: string }
  | { type: "teardown-switched"; id: WorkerId; afterMs: number }
  /** Read the memory of these workers' process trees and answer with a `memory` event. */
  | { type: "sample-memory"; ids: WorkerId[] }
  | { type: "failed"; why: string }
  | { type: "stopped" }
  /** Readiness or phase changed: what the supervisor reports may have too. */
  | { type: "changed" };

export interface ProgramStep {
  next: ProgramState;
  effects: ProgramEffect[];
}

/** teardown: auto starts as destroy; the first teardown hang switches the program to skip. */
export function initialTeardownMode(setting: TeardownSetting): TeardownMode {
  return setting === "skip" ? "skip" : "destroy";
}

export type AfterEnd =
  | { action: "restart"; reason: RestartReason; delayMs: number; failures: number }
  | { action: "fail"; reason: RestartReason; restarts: number; why: string }
  | { action: "leave"; reason: RestartReason };

/** What to do when a worker ended without being asked to. */
export function decideAfterEnd(
  ended: WorkerState,
  cfg: ProgramConfig,
  history: readonly number[],
  previousFailures: number,
  now: number,
  oomKilled = false,
): AfterEnd {
  const reason = unexpectedEndReason(ended, oomKilled);
  // A command that cannot be executed will not start on a retry either (s6's permanent failure).
  if (ended.exit?.error != null) return { action: "fail", reason, restarts: 0, why: `cannot start: ${ended.exit.error}` };
  if (!shouldRestart(cfg.restart.policy, reason)) return { action: "leave", reason };
  if (restartLimitHit(history, now, cfg.restart.limit)) {
    const restarts = pruneRestarts(history, now, cfg.restart.limit.windowMs).length + 1;
    return { action: "fail", reason, restarts, why: `${restarts} restarts within ${formatDuration(cfg.restart.limit.windowMs)}` };
  }
  const failures = ranWell(ended, cfg.restart.backoffMaxMs) ? 1 : previousFailures + 1;
  return { action: "restart", reason, delayMs: nextRestartDelay(failures, cfg.restart), failures };
}

export function initialProgramState(cfg: ProgramConfig): ProgramState {
  return {
    cfg,
    phase: "starting",
    slots: [],
    live: {},
    nextId: 1,
    teardown: initialTeardownMode(cfg.shutdown.teardown),
    history: [],
    stopping: null,
    failure: null,
    restarts: {},
    generation: 0,
    roll: null,
    deferred: [],
    memoryCheckAt: null,
    reportedReady: 0,
    deadline: null,
  };
}

/** Every slot has a ready worker (a replacement counts once it is ready; until then, the one it replaces). */
export function programReady(s: ProgramState): boolean {
  return s.slots.length > 0 && s.slots.every((slot) => slotReady(s, slot));
}

export function readyCount(s: ProgramState): number {
  return s.slots.filter((slot) => slotReady(s, slot)).length;
}

function slotReady(s: ProgramState, slot: SlotState): boolean {
  const ready = (id: WorkerId | undefined): boolean => id !== undefined && s.live[id]?.ready === true;
  return ready(slot.current ?? undefined) || ready(slot.retiring?.id);
}

export function liveIds(s: ProgramState): WorkerId[] {
  return Object.keys(s.live).map(Number);
}

/**
 * The state is copied once per step and then changed in place by the
 * helpers below, which keeps each rule one readable line; nothing outside
 * step() ever sees a state being changed.
 */
class Draft {
  readonly s: ProgramState;
  readonly effects: ProgramEffect[] = [];

  constructor(
    state: ProgramState,
    readonly now: number,
  ) {
    this.s = {
      ...state,
      slots: state.slots.map((slot) => ({ ...slot })),
      live: { ...state.live },
      history: [...state.history],
      restarts: { ...state.restarts },
      deferred: [...state.deferred],
    };
  }

  get closed(): boolean {
    return this.s.stopping !== null || this.s.phase === "failed";
  }

  spawn(index: number): void {
    if (this.closed) return;
    const id = this.s.nextId++;
    this.s.slots[index]!.current = id;
    this.s.live[id] = { slot: index, ready: false, spawnedAt: this.now };
    this.effects.push({ type: "spawn", id, slot: index, teardown: this.s.teardown });
  }

  stopWorker(id: WorkerId, reason: ShutdownReason, at?: number): void {
    this.effects.push({ type: "stop-worker", id, reason, teardown: this.s.teardown, ...(at !== undefined ? { at } : {}) });
  }

  /** Everything in a slot stops (a retiring worker for its own reason); nothing waits to start there. */
  emptySlot(slot: SlotState, reason: ShutdownReason, at?: number): void {
    slot.backoffUntil = null;
    slot.recycle = null;
    if (slot.current !== null) this.stopWorker(slot.current, reason, at);
    if (slot.retiring) this.stopWorker(slot.retiring.id, slot.retiring.reason, at);
  }

  countRestart(slot: SlotState, reason: RestartReason): void {
    slot.restarts++;
    this.s.restarts[reason] = (this.s.restarts[reason] ?? 0) + 1;
  }

  /** A new worker in slot `index`; the one it replaces (returned) stops once the new one is ready. */
  replaceSlot(index: number, reason: ReplaceReason): WorkerId | null {
    const slot = this.s.slots[index]!;
    slot.backoffUntil = null;
    slot.recycle = null;
    const old = slot.current;
    if (old !== null) {
      // A worker still replacing another hands over the older one at once.
      if (slot.retiring) this.stopWorker(slot.retiring.id, slot.retiring.reason);
      slot.retiring = { id: old, reason };
      this.countRestart(slot, reason);
      this.effects.push({ type: "restart-scheduled", id: old, slot: index, reason, delayMs: 0 });
    }
    this.spawn(index);
    return old;
  }

  recycle(index: number, id: WorkerId, why: string): void {
    const slot = this.s.slots[index];
    if (!slot || slot.current !== id || this.closed) return;
    // Workers on shared sockets recycle one at a time, so the others keep accepting.
    if (this.s.cfg.sockets.length > 0 && this.s.slots.some((sl) => sl.retiring !== null)) {
      if (!this.s.deferred.some((d) => d.slot === index)) this.s.deferred.push({ slot: index, id, why });
      return;
    }
    this.effects.push({ type: "recycling", id, why });
    this.replaceSlot(index, "recycle");
  }

  armMemoryCheck(): void {
    if (this.s.cfg.recycle.maxMemoryBytes <= 0 || this.s.memoryCheckAt !== null || this.closed) return;
    this.s.memoryCheckAt = this.now + MEMORY_CHECK_MS;
  }

  fail(why: string): void {
    this.s.phase = "failed";
    this.s.failure = why;
    this.s.memoryCheckAt = null;
    this.s.roll = null;
    this.effects.push({ type: "failed", why });
    // A failed program runs nothing: no flapping half of it.
    for (const slot of this.s.slots) this.emptySlot(slot, "stop");
    this.effects.push({ type: "changed" });
  }

  /** Moves a rolling replacement on while the workers it waits for are gone. */
  advanceRoll(): void {
    for (;;) {
      const roll = this.s.roll;
      if (!roll) return;
      if (this.closed || roll.generation !== this.s.generation) {
        this.s.roll = null;
        return;
      }
      if (roll.waiting.some((id) => id in this.s.live)) return;
      if (roll.next >= roll.end) {
        this.s.roll = null;
        return;
      }
      const old = this.replaceSlot(roll.next, roll.reason);
      this.s.roll = { ...roll, next: roll.next + 1, waiting: old === null ? [] : [old] };
    }
  }

  /** What follows from any change: the program stopped, surplus slots gone, readiness reported. */
  settle(): void {
    const s = this.s;
    if (s.stopping !== null && s.phase === "stopping" && liveIds(s).length === 0) {
      s.phase = "stopped";
      this.effects.push({ type: "stopped" });
    }
    while (s.slots.length > s.cfg.instances) {
      const last = s.slots[s.slots.length - 1]!;
      if (last.current !== null || last.retiring !== null || last.backoffUntil !== null) break;
      s.slots.pop();
    }
    if (programReady(s) && s.phase === "starting") s.phase = "running";
    // Every worker that gets ready is progress systemd hears of (STATUS=, more start time).
    const ready = readyCount(s);
    if (ready !== s.reportedReady) {
      s.reportedReady = ready;
      this.effects.push({ type: "changed" });
    }
    const times = [s.memoryCheckAt, ...s.slots.flatMap((slot) => [slot.backoffUntil, slot.recycle?.at ?? null])];
    const pending = times.filter((t): t is number => t !== null);
    s.deadline = pending.length > 0 ? Math.min(...pending) : null;
  }

  done(): ProgramStep {
    this.settle();
    return { next: this.s, effects: this.effects };
  }
}

export function step(state: ProgramState, event: ProgramEvent, now: number): ProgramStep {
  const d = new Draft(state, now);
  const s = d.s;
  switch (event.type) {
    case "start":
      // Every slot exists before the first spawn: a plain worker is ready at
      // once, and readiness must count all instances, not the ones so far.
      for (let index = 0; index < s.cfg.instances; index++) s.slots.push(newSlot());
      for (let index = 0; index < s.cfg.instances; index++) d.spawn(index);
      return d.done();
    case "stop":
      if (s.phase !== "failed") s.phase = "stopping";
      s.stopping ??= event.reason;
      s.memoryCheckAt = null;
      s.roll = null;
      for (const slot of s.slots) d.emptySlot(slot, event.reason, event.at ?? now);
      return d.done();
    case "force":
      for (const id of liveIds(s)) d.effects.push({ type: "force-worker", id });
      return d.done();
    case "replace":
      return onReplace(d, event.reason, event.cfg);
    case "readiness":
      return onReadiness(d, event.id, event.ready);
    case "hang":
      // teardown: auto learns from the first teardown hang: from then on the program skips it.
      if (event.phase === "teardown" && s.cfg.shutdown.teardown === "auto" && s.teardown === "destroy") {
        s.teardown = "skip";
        d.effects.push({ type: "teardown-switched", id: event.id, afterMs: event.afterMs });
      }
      return d.done();
    case "ended":
      return onEnded(d, event.id, event.state, event.oom);
    case "memory": {
      const limit = s.cfg.recycle.maxMemoryBytes;
      for (const { id, rssBytes } of event.samples) {
        const slot = s.live[id]?.slot;
        if (slot !== undefined && limit > 0 && rssBytes > limit) d.recycle(slot, id, `memory ${formatSize(rssBytes)} over max_memory ${formatSize(limit)}`);
      }
      return d.done();
    }
    case "deadline":
      return onDeadline(d);
    default:
      return assertNever(event, "program event");
  }
}

function onReplace(d: Draft, reason: ReplaceReason, cfg: ProgramConfig): ProgramStep {
  const s = d.s;
  if (d.closed) return d.done();
  const teardownChanged = cfg.shutdown.teardown !== s.cfg.shutdown.teardown;
  const shared = cfg.sockets.length > 0 || s.cfg.sockets.length > 0;
  s.cfg = cfg;
  if (teardownChanged) s.teardown = initialTeardownMode(cfg.shutdown.teardown);
  s.generation++;
  s.roll = null;
  const kept = Math.min(s.slots.length, cfg.instances);
  // Slots the new configuration no longer has: stop what runs there.
  const surplus: WorkerId[] = [];
  s.slots.forEach((slot, index) => {
    if (index < cfg.instances) return;
    for (const id of [slot.current, slot.retiring?.id]) if (id != null) surplus.push(id);
    d.emptySlot(slot, reason);
  });
  if (shared) {
    // Workers that share listening sockets are replaced one slot at a time:
    // each old worker stops (stops accepting, finishes what it has) only once
    // its replacement is ready, and the next slot waits until it has gone,
    // so the other instances keep accepting throughout. Added slots start
    // first; dropped slots stop first.
    s.roll = { generation: s.generation, reason, next: 0, end: kept, waiting: surplus };
  } else {
    for (let index = 0; index < kept; index++) d.replaceSlot(index, reason);
  }
  for (let index = s.slots.length; index < cfg.instances; index++) {
    s.slots.push(newSlot());
    d.spawn(index);
  }
  d.effects.push({ type: "changed" });
  d.advanceRoll();
  return d.done();
}

function onReadiness(d: Draft, id: WorkerId, ready: boolean): ProgramStep {
  const s = d.s;
  const entry = s.live[id];
  if (!entry) return d.done();
  s.live[id] = { ...entry, ready };
  const slot = s.slots[entry.slot];
  if (ready && slot && slot.current === id) {
    if (slot.retiring) d.stopWorker(slot.retiring.id, slot.retiring.reason);
    const maxAge = s.cfg.recycle.maxAgeMs;
    if (maxAge > 0 && slot.recycle === null) slot.recycle = { at: entry.spawnedAt + maxAge, id };
    d.armMemoryCheck();
  }
  return d.done();
}

function onEnded(d: Draft, id: WorkerId, ended: WorkerState, oom: boolean): ProgramStep {
  const s = d.s;
  const entry = s.live[id];
  if (!entry) return d.done();
  delete s.live[id];
  const index = entry.slot;
  const slot = s.slots[index]!;
  if (slot.retiring?.id === id) {
    slot.retiring = null;
    const next = s.deferred.shift();
    if (next) d.recycle(next.slot, next.id, next.why);
    d.advanceRoll();
    return d.done();
  }
  if (slot.current !== id) {
    d.advanceRoll();
    return d.done();
  }
  slot.current = null;
  slot.recycle = null;
  if (d.closed || index >= s.cfg.instances) {
    d.advanceRoll();
    return d.done();
  }
  const decision = decideAfterEnd(ended, s.cfg, s.history, slot.failures, d.now, oom);
  switch (decision.action) {
    case "leave":
      break;
    case "fail":
      d.fail(decision.why);
      break;
    case "restart":
      s.history = [...pruneRestarts(s.history, d.now, s.cfg.restart.limit.windowMs), d.now];
      d.countRestart(slot, decision.reason);
      slot.failures = decision.failures;
      slot.backoffUntil = d.now + decision.delayMs;
      d.effects.push({ type: "restart-scheduled", id, slot: index, reason: decision.reason, delayMs: decision.delayMs });
      break;
    default:
      assertNever(decision, "decision");
  }
  d.advanceRoll();
  return d.done();
}

function onDeadline(d: Draft): ProgramStep {
  const s = d.s;
  s.slots.forEach((slot, index) => {
    if (slot.backoffUntil !== null && slot.backoffUntil <= d.now) {
      slot.backoffUntil = null;
      d.spawn(index);
    }
    if (slot.recycle !== null && slot.recycle.at <= d.now) {
      const { id } = slot.recycle;
      slot.recycle = null;
      d.recycle(index, id, `max_age ${formatDuration(s.cfg.recycle.maxAgeMs)} reached`);
    }
  });
  if (s.memoryCheckAt !== null && s.memoryCheckAt <= d.now) {
    s.memoryCheckAt = null;
    const ids = s.slots
      .filter((slot) => slot.current !== null && slot.retiring === null && s.live[slot.current]?.ready === true)
      .map((slot) => slot.current!);
    if (ids.length > 0) d.effects.push({ type: "sample-memory", ids });
    d.armMemoryCheck();
  }
  return d.done();
}

function newSlot(): SlotState {
  return { current: null, retiring: null, backoffUntil: null, recycle: null, failures: 0, restarts: 0 };
}

function formatSize(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)}MiB`;
}
