// One program: `instances` worker slots, each with its current worker, the
// worker it is replacing (if any) and its restart backoff, plus the
// program's own state. Restart decisions are the plain function
// decideAfterEnd(); this class carries them out.
import type { ShutdownReason, TeardownMode } from "../../lib/protocol/index.js";
import type { TimerHandle } from "../clock/clock.js";
import type { ProgramConfig } from "../config/types.js";
import type { WorkerState } from "../worker/lifecycle.js";
import {
  nextRestartDelay,
  pruneRestarts,
  ranWell,
  killedFromOutside,
  restartLimitHit,
  shouldRestart,
  unexpectedEndReason,
  type RestartReason,
} from "../worker/policy.js";
import { Worker, type WorkerDeps } from "../worker/worker.js";
import { treeRssBytes } from "../worker/procfs.js";
import { formatDuration } from "../config/duration.js";
import type { EventSink, SupervisorEvent } from "./events.js";

/** Why vigild itself replaces workers. */
export type ReplaceReason = Extract<ShutdownReason & RestartReason, "restart" | "reload" | "recycle">;

export type ProgramState = "starting" | "running" | "stopping" | "stopped" | "failed";

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

/** teardown: auto starts as destroy; the first teardown hang switches the program to skip. */
export function initialTeardownMode(setting: ProgramConfig["shutdown"]["teardown"]): TeardownMode {
  return setting === "skip" ? "skip" : "destroy";
}

/** How often a program with max_memory samples its workers' process trees. */
export const MEMORY_CHECK_MS = 5_000;

function formatSize(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)}MiB`;
}

export interface Slot {
  worker: Worker | null;
  /** The worker `worker` replaces: stopped with `reason` once the new one is ready. */
  retiring: { worker: Worker; reason: ShutdownReason } | null;
  backoff: TimerHandle | null;
  /** max_age of the current worker. */
  recycle: TimerHandle | null;
  failures: number;
  restarts: number;
}

export interface ProgramDeps extends Omit<WorkerDeps, "onEnd" | "onReadiness" | "emit"> {
  /** Whether a worker that ended unasked was OOM-killed (daemon/worker/oom.ts). */
  oom: { attribute(killedFromOutside: boolean, now: number): boolean };
  /** Readiness or state of the program changed. */
  onChange: (program: Program) => void;
  emit: EventSink;
}

export class Program {
  state: ProgramState = "starting";
  readonly slots: Slot[] = [];
  readonly restarts = new Map<RestartReason, number>();
  teardownMode: TeardownMode;
  /** Why the program FAILED, once it has. */
  failure: string | null = null;
  private history: number[] = [];
  private waiters: Array<{ done: () => boolean; resolve: () => void }> = [];
  private stopping: ShutdownReason | null = null;
  private wasReady = false;
  private memoryTimer: TimerHandle | null = null;
  /** Counts replaceAll() calls, so a rolling replacement overtaken by a newer one stops. */
  private rollGeneration = 0;
  /** Recycles waiting for another slot's replacement to finish (shared sockets only). */
  private readonly deferredRecycles = new Map<number, { worker: Worker; why: string }>();

  constructor(
    public cfg: ProgramConfig,
    private readonly deps: ProgramDeps,
  ) {
    this.teardownMode = initialTeardownMode(cfg.shutdown.teardown);
  }

  get name(): string {
    return this.cfg.name;
  }

  /** Every slot has a ready worker (a replacement counts once it is ready; until then, the one it replaces). */
  get ready(): boolean {
    return this.slots.length > 0 && this.slots.every((s) => s.worker?.state.ready === true || s.retiring?.worker.state.ready === true);
  }

  get readyCount(): number {
    return this.slots.filter((s) => s.worker?.state.ready === true || s.retiring?.worker.state.ready === true).length;
  }

  /** Every live worker process, replacements and retirees included. */
  workers(): Worker[] {
    return this.slots.flatMap((s) => [...(s.worker ? [s.worker] : []), ...(s.retiring ? [s.retiring.worker] : [])]);
  }

  start(): void {
    // Every slot exists before the first spawn: a plain worker is ready at
    // once, and readiness must count all instances, not the ones so far.
    for (let index = 0; index < this.cfg.instances; index++) this.slots.push(newSlot());
    for (let index = 0; index < this.cfg.instances; index++) this.spawn(index);
  }

  /** Phased stop of every worker; resolves when all are gone. */
  stop(reason: ShutdownReason, at: number = this.deps.clock.now()): Promise<void> {
    if (this.state !== "failed") this.state = "stopping";
    this.stopping ??= reason;
    this.memoryTimer?.cancel();
    this.memoryTimer = null;
    for (const slot of this.slots) {
      slot.backoff?.cancel();
      slot.backoff = null;
      slot.recycle?.cancel();
      slot.recycle = null;
      slot.worker?.stop(reason, this.teardownMode, at);
      slot.retiring?.worker.stop(slot.retiring.reason, this.teardownMode, at);
    }
    return this.when(() => this.workers().length === 0);
  }

  force(): void {
    for (const worker of this.workers()) worker.force();
  }

  /**
   * Replaces every worker, each slot on its own: a new worker is spawned and
   * the old one is stopped (phased, with `reason`) once the new one is ready.
   * With `cfg`, the new workers run the new configuration and the number of
   * slots follows `instances`. Resolves when no old worker is left.
   */
  replaceAll(reason: ReplaceReason, cfg: ProgramConfig = this.cfg): Promise<void> {
    if (this.stopping !== null || this.state === "failed") return Promise.resolve();
    const teardownChanged = cfg.shutdown.teardown !== this.cfg.shutdown.teardown;
    const shared = cfg.sockets.length > 0 || this.cfg.sockets.length > 0;
    this.cfg = cfg;
    if (teardownChanged) this.teardownMode = initialTeardownMode(cfg.shutdown.teardown);
    const generation = ++this.rollGeneration;
    if (shared) return this.roll(reason, cfg, generation);
    const olds: Worker[] = [];
    this.slots.forEach((slot, index) => {
      if (index >= cfg.instances) {
        // A slot the new configuration no longer has: stop what runs there.
        slot.backoff?.cancel();
        slot.backoff = null;
        if (slot.worker) olds.push(slot.worker);
        slot.worker?.stop(reason, this.teardownMode);
        slot.retiring?.worker.stop(slot.retiring.reason, this.teardownMode);
        return;
      }
      const old = this.replaceSlot(index, reason);
      if (old) olds.push(old);
    });
    const first = this.slots.length;
    for (let index = first; index < cfg.instances; index++) this.slots.push(newSlot());
    for (let index = first; index < cfg.instances; index++) this.spawn(index);
    this.deps.onChange(this);
    return this.when(() => olds.every((w) => !w.alive)).then(() => this.dropSurplusSlots());
  }

  /**
   * Workers that share listening sockets are replaced one slot at a time:
   * each old worker stops (stops accepting, finishes what it has) only once
   * its replacement is ready, and the next slot waits until it has gone, so
   * the other instances keep accepting throughout. Slots the new
   * configuration adds start first; slots it drops stop first.
   */
  private async roll(reason: ReplaceReason, cfg: ProgramConfig, generation: number): Promise<void> {
    const current = (): boolean => generation === this.rollGeneration && this.stopping === null && this.state !== "failed";
    const surplus: Worker[] = [];
    this.slots.forEach((slot, index) => {
      if (index < cfg.instances) return;
      slot.backoff?.cancel();
      slot.backoff = null;
      for (const w of [slot.worker, slot.retiring?.worker]) {
        if (!w) continue;
        surplus.push(w);
        w.stop(reason, this.teardownMode);
      }
    });
    const kept = Math.min(this.slots.length, cfg.instances);
    for (let index = this.slots.length; index < cfg.instances; index++) {
      this.slots.push(newSlot());
      this.spawn(index);
    }
    this.deps.onChange(this);
    await this.when(() => surplus.every((w) => !w.alive));
    this.dropSurplusSlots();
    for (let index = 0; index < kept && current(); index++) {
      const old = this.replaceSlot(index, reason);
      if (old) await this.when(() => !old.alive);
    }
  }

  /** A new worker in slot `index`; the one it replaces (returned) stops once the new one is ready. */
  private replaceSlot(index: number, reason: ReplaceReason): Worker | null {
    const slot = this.slots[index]!;
    slot.backoff?.cancel();
    slot.backoff = null;
    slot.recycle?.cancel();
    slot.recycle = null;
    const old = slot.worker && slot.worker.alive ? slot.worker : null;
    if (old) {
      // A worker still replacing another hands over the older one at once.
      slot.retiring?.worker.stop(slot.retiring.reason, this.teardownMode);
      slot.retiring = { worker: old, reason };
      this.countRestart(slot, reason);
      this.deps.emit({ type: "worker-restart-scheduled", reason, delayMs: 0, ...old.ref });
    }
    this.spawn(index);
    return old;
  }

  /** Recycling: a worker past max_age, or over max_memory, is replaced before it stops. */
  private recycle(index: number, worker: Worker, why: string): void {
    const slot = this.slots[index];
    if (!slot || slot.worker !== worker || this.stopping !== null || this.state === "failed") return;
    // Workers on shared sockets recycle one at a time, so the others keep accepting.
    if (this.cfg.sockets.length > 0 && this.slots.some((s) => s.retiring !== null)) {
      this.deferredRecycles.set(index, { worker, why });
      return;
    }
    this.deps.emit({ type: "worker-recycling", why, ...worker.ref });
    this.replaceSlot(index, "recycle");
  }

  private armMaxAge(index: number, worker: Worker): void {
    const maxAge = this.cfg.recycle.maxAgeMs;
    const slot = this.slots[index]!;
    if (maxAge <= 0 || slot.recycle) return;
    slot.recycle = this.deps.clock.at(worker.state.t.spawnedAt + maxAge, () => {
      slot.recycle = null;
      this.recycle(index, worker, `max_age ${formatDuration(maxAge)} reached`);
    });
  }

  /** One sampler per program with max_memory; the only periodic work, and only where asked for. */
  private armMemoryCheck(): void {
    if (this.cfg.recycle.maxMemoryBytes <= 0 || this.memoryTimer || this.stopping !== null) return;
    this.memoryTimer = this.deps.clock.at(this.deps.clock.now() + MEMORY_CHECK_MS, () => {
      this.memoryTimer = null;
      const limit = this.cfg.recycle.maxMemoryBytes;
      this.slots.forEach((slot, index) => {
        const w = slot.worker;
        if (!w || !w.state.ready || w.pid === null || slot.retiring) return;
        const rss = treeRssBytes(w.pid);
        if (rss > limit) this.recycle(index, w, `memory ${formatSize(rss)} over max_memory ${formatSize(limit)}`);
      });
      this.armMemoryCheck();
    });
  }

  private dropSurplusSlots(): void {
    while (this.slots.length > this.cfg.instances) {
      const last = this.slots[this.slots.length - 1]!;
      if (last.worker || last.retiring) break;
      this.slots.pop();
    }
  }

  private when(done: () => boolean): Promise<void> {
    if (done()) {
      this.settle();
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push({ done, resolve }));
  }

  private settle(): void {
    if (this.stopping !== null && this.state === "stopping" && this.workers().length === 0) {
      this.state = "stopped";
      this.deps.emit({ type: "program-stopped", program: this.name });
    }
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.done()) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  private spawn(index: number): void {
    if (this.stopping !== null || this.state === "failed") return;
    const worker = new Worker(
      this.cfg,
      index,
      {
        ...this.deps,
        emit: (event) => this.observe(event),
        onEnd: (w) => this.onWorkerEnd(index, w),
        onReadiness: (w, ready) => this.onReadiness(index, w, ready),
      },
      this.teardownMode,
    );
    this.slots[index]!.worker = worker;
    worker.start();
  }

  /** Sees every event of this program's workers on its way out. */
  private observe(event: SupervisorEvent): void {
    this.deps.emit(event);
    if (event.type === "worker-hang" && event.phase === "teardown" && this.cfg.shutdown.teardown === "auto" && this.teardownMode === "destroy") {
      this.teardownMode = "skip";
      this.deps.emit({
        type: "teardown-switched",
        program: this.name,
        worker: event.worker,
        pid: event.pid,
        afterMs: event.afterMs,
      });
    }
  }

  private onReadiness(index: number, worker: Worker, ready: boolean): void {
    const slot = this.slots[index];
    if (ready && slot && slot.worker === worker) {
      if (slot.retiring) slot.retiring.worker.stop(slot.retiring.reason, this.teardownMode);
      this.armMaxAge(index, worker);
      this.armMemoryCheck();
    }
    if (this.ready && this.state === "starting") this.state = "running";
    if (this.ready !== this.wasReady) {
      this.wasReady = this.ready;
      this.deps.onChange(this);
    }
  }

  private onWorkerEnd(index: number, worker: Worker): void {
    const slot = this.slots[index]!;
    if (slot.retiring?.worker === worker) {
      slot.retiring = null;
      this.settle();
      const [next] = this.deferredRecycles;
      if (next) {
        this.deferredRecycles.delete(next[0]);
        this.recycle(next[0], next[1].worker, next[1].why);
      }
      return;
    }
    if (slot.worker !== worker) return this.settle();
    slot.worker = null;
    slot.recycle?.cancel();
    slot.recycle = null;
    if (this.stopping !== null || this.state === "failed" || index >= this.cfg.instances) {
      this.settle();
      return;
    }
    const now = this.deps.clock.now();
    const oom = this.deps.oom.attribute(killedFromOutside(worker.state), now);
    const decision = decideAfterEnd(worker.state, this.cfg, this.history, slot.failures, now, oom);
    switch (decision.action) {
      case "leave":
        break;
      case "fail":
        this.fail(decision.why);
        break;
      case "restart":
        this.history = [...pruneRestarts(this.history, now, this.cfg.restart.limit.windowMs), now];
        this.countRestart(slot, decision.reason);
        slot.failures = decision.failures;
        this.deps.emit({
          type: "worker-restart-scheduled",
          reason: decision.reason,
          delayMs: decision.delayMs,
          program: this.name,
          worker: index,
          pid: worker.pid,
        });
        slot.backoff = this.deps.clock.at(now + decision.delayMs, () => {
          slot.backoff = null;
          this.spawn(index);
        });
        break;
    }
    this.settle();
  }

  private countRestart(slot: Slot, reason: RestartReason): void {
    slot.restarts++;
    this.restarts.set(reason, (this.restarts.get(reason) ?? 0) + 1);
  }

  private fail(why: string): void {
    this.state = "failed";
    this.failure = why;
    this.memoryTimer?.cancel();
    this.memoryTimer = null;
    this.deps.emit({ type: "program-failed", program: this.name, why });
    // A failed program runs nothing: no flapping half of it.
    for (const slot of this.slots) {
      slot.backoff?.cancel();
      slot.backoff = null;
      slot.recycle?.cancel();
      slot.recycle = null;
      slot.worker?.stop("stop", this.teardownMode);
      slot.retiring?.worker.stop("stop", this.teardownMode);
    }
    this.deps.onChange(this);
  }
}

function newSlot(): Slot {
  return { worker: null, retiring: null, backoff: null, recycle: null, failures: 0, restarts: 0 };
}
