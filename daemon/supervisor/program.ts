// One program: `instances` worker slots, each with its current worker and
// its restart backoff, plus the program's own state. Restart decisions are
// the plain function decideAfterEnd(); this class carries them out.
import type { ShutdownReason, TeardownMode } from "../../lib/protocol/index.js";
import type { Clock, TimerHandle } from "../clock/clock.js";
import type { ProgramConfig } from "../config/types.js";
import type { WorkerState } from "../worker/lifecycle.js";
import {
  nextRestartDelay,
  pruneRestarts,
  ranWell,
  restartLimitHit,
  shouldRestart,
  unexpectedEndReason,
  type RestartReason,
} from "../worker/policy.js";
import { Worker, type WorkerDeps } from "../worker/worker.js";
import type { EventSink } from "./events.js";

export type ProgramState = "starting" | "running" | "stopping" | "stopped" | "failed";

export type AfterEnd =
  | { action: "restart"; reason: RestartReason; delayMs: number; failures: number }
  | { action: "fail"; reason: RestartReason; restarts: number }
  | { action: "leave"; reason: RestartReason };

/** What to do when a worker ended without being asked to. */
export function decideAfterEnd(
  ended: WorkerState,
  cfg: ProgramConfig,
  history: readonly number[],
  previousFailures: number,
  now: number,
): AfterEnd {
  const reason = unexpectedEndReason(ended);
  if (!shouldRestart(cfg.restart.policy, reason)) return { action: "leave", reason };
  if (restartLimitHit(history, now, cfg.restart.limit)) {
    return { action: "fail", reason, restarts: pruneRestarts(history, now, cfg.restart.limit.windowMs).length + 1 };
  }
  const failures = ranWell(ended, cfg.restart.backoffMaxMs) ? 1 : previousFailures + 1;
  return { action: "restart", reason, delayMs: nextRestartDelay(failures, cfg.restart), failures };
}

interface Slot {
  worker: Worker | null;
  backoff: TimerHandle | null;
  failures: number;
}

export interface ProgramDeps extends Omit<WorkerDeps, "onEnd" | "onReadiness"> {
  /** Readiness of the program changed (all instances ready, or not any more). */
  onChange: (program: Program) => void;
  emit: EventSink;
}

export class Program {
  state: ProgramState = "starting";
  readonly slots: Slot[];
  readonly restarts = new Map<RestartReason, number>();
  private history: number[] = [];
  private readyCount = 0;
  private stopWaiters: Array<() => void> = [];
  private stopRequest: { reason: ShutdownReason } | null = null;
  teardownMode: TeardownMode;

  constructor(
    readonly cfg: ProgramConfig,
    private readonly deps: ProgramDeps,
  ) {
    this.slots = Array.from({ length: cfg.instances }, () => ({ worker: null, backoff: null, failures: 0 }));
    this.teardownMode = cfg.shutdown.teardown === "skip" ? "skip" : "destroy";
  }

  get name(): string {
    return this.cfg.name;
  }

  get ready(): boolean {
    return this.readyCount === this.cfg.instances;
  }

  get clock(): Clock {
    return this.deps.clock;
  }

  workers(): Worker[] {
    return this.slots.flatMap((s) => (s.worker ? [s.worker] : []));
  }

  start(): void {
    this.slots.forEach((_, index) => this.spawn(index));
  }

  /** Phased stop of every worker; resolves when all are gone. */
  stop(reason: ShutdownReason): Promise<void> {
    if (this.state !== "stopped" && this.state !== "failed") this.state = "stopping";
    this.stopRequest ??= { reason };
    for (const slot of this.slots) {
      slot.backoff?.cancel();
      slot.backoff = null;
      slot.worker?.stop(reason, this.teardownMode);
    }
    return this.whenAllEnded();
  }

  force(): void {
    for (const slot of this.slots) slot.worker?.force();
  }

  private whenAllEnded(): Promise<void> {
    if (this.workers().length === 0) {
      this.settleStopped();
      return Promise.resolve();
    }
    return new Promise((resolve) => this.stopWaiters.push(resolve));
  }

  private settleStopped(): void {
    if (this.state === "stopping") {
      this.state = "stopped";
      this.deps.emit({ type: "program-stopped", program: this.name });
    }
    const waiters = this.stopWaiters;
    this.stopWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private spawn(index: number): void {
    const worker = new Worker(
      this.cfg,
      index,
      {
        ...this.deps,
        onEnd: (w) => this.onWorkerEnd(index, w),
        onReadiness: (_w, ready) => this.onReadiness(ready),
      },
      this.teardownMode,
    );
    this.slots[index]!.worker = worker;
    worker.start();
  }

  private onReadiness(ready: boolean): void {
    const wasReady = this.ready;
    this.readyCount += ready ? 1 : -1;
    if (this.ready && this.state === "starting") this.state = "running";
    if (wasReady !== this.ready) this.deps.onChange(this);
  }

  private onWorkerEnd(index: number, worker: Worker): void {
    const slot = this.slots[index]!;
    if (slot.worker === worker) slot.worker = null;
    if (this.stopRequest !== null || this.state === "failed") {
      if (this.workers().length === 0) this.settleStopped();
      return;
    }
    const now = this.deps.clock.now();
    const decision = decideAfterEnd(worker.state, this.cfg, this.history, slot.failures, now);
    switch (decision.action) {
      case "leave":
        return;
      case "fail":
        this.fail(decision.restarts);
        return;
      case "restart":
        this.history = [...pruneRestarts(this.history, now, this.cfg.restart.limit.windowMs), now];
        this.restarts.set(decision.reason, (this.restarts.get(decision.reason) ?? 0) + 1);
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
    }
  }

  private fail(restarts: number): void {
    this.state = "failed";
    this.deps.emit({ type: "program-failed", program: this.name, restarts, windowMs: this.cfg.restart.limit.windowMs });
    this.deps.onChange(this);
    // A failed program runs nothing: no flapping half of it.
    for (const slot of this.slots) {
      slot.backoff?.cancel();
      slot.backoff = null;
      slot.worker?.stop("stop", this.teardownMode);
    }
  }
}
