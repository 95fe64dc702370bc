// One program's edge: carries out what program-lifecycle.step() decides. It
// owns the Worker objects (by id), the one timer on the state's deadline, and
// the promises of stop() and replaceAll(), and turns what workers report into
// program events. Every decision is in the pure step.
import { DeadlineTimer } from "../clock/deadline.js";
import type { ProgramConfig } from "../config/types.js";
import { assertNever } from "../core/assert.js";
import { Serial } from "../core/serial.js";
import type { EventSink } from "../core/events.js";
import type { ReplaceReason, ShutdownReason, TeardownMode, WorkerStateLabel } from "../core/vocabulary.js";
import { emptySlotLabel, workerStateLabel } from "../core/vocabulary.js";
import { killedFromOutside } from "../worker/policy.js";
import { Worker, type WorkerDeps } from "../worker/worker.js";
import {
  initialProgramState,
  liveIds,
  programReady,
  readyCount,
  step,
  type ProgramEffect,
  type ProgramEvent,
  type ProgramState,
  type WorkerId,
} from "./program-lifecycle.js";

export interface ProgramDeps extends Omit<WorkerDeps, "onEnd" | "onReadiness" | "onHang" | "emit"> {
  /** Whether a worker that ended unasked was OOM-killed (daemon/worker/oom.ts). */
  oom: { attribute(killedFromOutside: boolean, now: number): boolean };
  /** Readiness or state of the program changed. */
  onChange: (program: Program) => void;
  emit: EventSink;
}

/** One slot as vigilctl status and vigil_workers show it: its live workers, or what the empty slot waits for. */
export interface SlotView {
  index: number;
  restarts: number;
  workers: Array<{ worker: Worker; label: WorkerStateLabel }>;
  /** The label of the slot when no worker is live in it. */
  empty: WorkerStateLabel | null;
}

export class Program {
  private s: ProgramState;
  private readonly workersById = new Map<WorkerId, Worker>();
  private readonly timer: DeadlineTimer;
  private waiters: Array<{ done: () => boolean; resolve: () => void }> = [];
  private readonly events = new Serial<ProgramEvent>(
    (event) => this.handle(event),
    () => {
      this.timer.set(this.s.deadline);
      this.settleWaiters();
    },
  );

  constructor(
    cfg: ProgramConfig,
    private readonly deps: ProgramDeps,
  ) {
    this.s = initialProgramState(cfg);
    this.timer = new DeadlineTimer(deps.clock, () => this.dispatch({ type: "deadline" }));
  }

  get name(): string {
    return this.s.cfg.name;
  }

  get cfg(): ProgramConfig {
    return this.s.cfg;
  }

  get state(): ProgramState["phase"] {
    return this.s.phase;
  }

  get failure(): string | null {
    return this.s.failure;
  }

  get teardownMode(): TeardownMode {
    return this.s.teardown;
  }

  get restarts(): ProgramState["restarts"] {
    return this.s.restarts;
  }

  get ready(): boolean {
    return programReady(this.s);
  }

  get readyCount(): number {
    return readyCount(this.s);
  }

  /** Every live worker process, replacements and retirees included. */
  workers(): Worker[] {
    return liveIds(this.s).flatMap((id) => this.workersById.get(id) ?? []);
  }

  slots(): SlotView[] {
    return this.s.slots.map((slot, index) => {
      const workers = [slot.current, slot.retiring?.id]
        .flatMap((id) => (id == null ? [] : (this.workersById.get(id) ?? [])))
        .flatMap((worker) => {
          const label = workerStateLabel(worker.state.phase);
          return label === null ? [] : [{ worker, label }];
        });
      return {
        index,
        restarts: slot.restarts,
        workers,
        empty: workers.length === 0 ? emptySlotLabel(slot.backoffUntil !== null, this.s.phase) : null,
      };
    });
  }

  start(): void {
    this.dispatch({ type: "start" });
  }

  /** Phased stop of every worker; resolves when all are gone. */
  stop(reason: ShutdownReason, at: number = this.deps.clock.now()): Promise<void> {
    this.dispatch({ type: "stop", reason, at });
    return this.when(() => liveIds(this.s).length === 0);
  }

  force(): void {
    this.dispatch({ type: "force" });
  }

  /**
   * Replaces every worker, each slot on its own: a new worker is spawned and
   * the old one is stopped (phased, with `reason`) once the new one is ready;
   * workers on shared sockets one slot at a time. With `cfg`, the new workers
   * run the new configuration and the number of slots follows `instances`.
   * Resolves when no old worker is left.
   */
  replaceAll(reason: ReplaceReason, cfg: ProgramConfig = this.s.cfg): Promise<void> {
    const olds = new Set(liveIds(this.s));
    this.dispatch({ type: "replace", reason, cfg });
    const generation = this.s.generation;
    return this.when(
      () => (this.s.roll === null || this.s.roll.generation !== generation) && liveIds(this.s).every((id) => !olds.has(id)),
    );
  }

  private when(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ done, resolve }));
  }

  private dispatch(event: ProgramEvent): void {
    this.events.push(event);
  }

  private handle(event: ProgramEvent): void {
    const result = step(this.s, event, this.deps.clock.now());
    this.s = result.next;
    for (const effect of result.effects) this.apply(effect);
    // Kept until its end is decided, so the events about it can name its pid.
    if (event.type === "ended") this.workersById.delete(event.id);
  }

  private apply(effect: ProgramEffect): void {
    const { emit } = this.deps;
    switch (effect.type) {
      case "spawn":
        this.spawn(effect.id, effect.slot, effect.teardown);
        return;
      case "stop-worker":
        this.workersById.get(effect.id)?.stop(effect.reason, effect.teardown, effect.at);
        return;
      case "force-worker":
        this.workersById.get(effect.id)?.force();
        return;
      case "restart-scheduled":
        emit({
          type: "worker-restart-scheduled",
          reason: effect.reason,
          delayMs: effect.delayMs,
          program: this.name,
          worker: effect.slot,
          pid: this.workersById.get(effect.id)?.pid ?? null,
        });
        return;
      case "recycling":
        this.withWorker(effect.id, (w) => emit({ type: "worker-recycling", why: effect.why, ...w.ref }));
        return;
      case "teardown-switched":
        this.withWorker(effect.id, (w) => emit({ type: "teardown-switched", afterMs: effect.afterMs, ...w.ref }));
        return;
      case "sample-memory": {
        const samples = effect.ids.flatMap((id) => {
          const pid = this.workersById.get(id)?.pid ?? null;
          return pid === null ? [] : [{ id, rssBytes: this.deps.host.treeRssBytes(pid) }];
        });
        this.dispatch({ type: "memory", samples });
        return;
      }
      case "failed":
        emit({ type: "program-failed", program: this.name, why: effect.why });
        return;
      case "stopped":
        emit({ type: "program-stopped", program: this.name });
        return;
      case "changed":
        this.deps.onChange(this);
        return;
      default:
        assertNever(effect, "program effect");
    }
  }

  private withWorker(id: WorkerId, fn: (worker: Worker) => void): void {
    const worker = this.workersById.get(id);
    if (worker) fn(worker);
  }

  private spawn(id: WorkerId, slot: number, teardown: TeardownMode): void {
    const worker = new Worker(
      id,
      this.s.cfg,
      slot,
      {
        ...this.deps,
        onEnd: (w) => this.onWorkerEnd(w),
        onReadiness: (w, ready) => this.dispatch({ type: "readiness", id: w.id, ready }),
        onHang: (w, phase, afterMs) => this.dispatch({ type: "hang", id: w.id, phase, afterMs }),
      },
      teardown,
    );
    this.workersById.set(id, worker);
    worker.start();
  }

  private onWorkerEnd(worker: Worker): void {
    // Asked only for a worker that ended unasked: that is what the kill count can explain.
    const oom = worker.state.stop === null && this.deps.oom.attribute(killedFromOutside(worker.state), this.deps.clock.now());
    this.dispatch({ type: "ended", id: worker.id, state: worker.state, oom });
  }

  private settleWaiters(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.done()) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }
}
