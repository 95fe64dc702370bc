// What happens in the supervisor, as data. The supervisor emits each event
// once; the log, the metrics and D-Bus each subscribe and render it their way.
import type { ShutdownDurations, StopRequest, Timeline } from "./record.js";
import type { HangPhase, Outcome, RestartReason, ShutdownReason, TeardownMode, WorkerPhase } from "./vocabulary.js";

export interface WorkerRef {
  program: string;
  worker: number;
  pid: number | null;
}

export type SupervisorEvent =
  | ({ type: "worker-spawned" } & WorkerRef)
  | ({ type: "worker-spawn-failed"; error: string } & WorkerRef)
  | ({ type: "worker-ready"; afterMs: number } & WorkerRef)
  | ({ type: "worker-status"; text: string } & WorkerRef)
  | ({ type: "worker-output-dropped"; bytes: number; first: boolean } & WorkerRef)
  | ({ type: "worker-hang"; phase: HangPhase; afterMs: number } & WorkerRef)
  | ({ type: "worker-not-ready"; afterMs: number; timeoutMs: number } & WorkerRef)
  | ({ type: "worker-stopping"; reason: ShutdownReason; teardown: TeardownMode; signal: NodeJS.Signals | null } & WorkerRef)
  | ({
      type: "worker-exited";
      code: number | null;
      signal: NodeJS.Signals | null;
      error: string | null;
      outcome: Outcome | null;
      durations: ShutdownDurations;
      hang: HangPhase | null;
      uptimeMs: number;
      stop: StopRequest | null;
      timeline: Timeline;
      /** vigild gave up waiting for it after SIGKILL; the process may still exist. */
      unkillable: boolean;
    } & WorkerRef)
  /** Still there UNKILLABLE_AFTER_MS after SIGKILL; `state`/`wchan` from /proc say where the kernel holds it. */
  | ({ type: "worker-unkillable"; afterMs: number; state: string | null; wchan: string | null } & WorkerRef)
  /** A worker given up on as unkillable has finally exited, `afterMs` after vigild stopped waiting. */
  | ({ type: "worker-unkillable-gone"; afterMs: number; code: number | null; signal: NodeJS.Signals | null } & WorkerRef)
  | ({ type: "worker-restart-scheduled"; reason: RestartReason; delayMs: number } & WorkerRef)
  | ({ type: "protocol-error"; error: string } & WorkerRef)
  | ({ type: "event-ignored"; event: string; phase: WorkerPhase } & WorkerRef)
  | ({ type: "teardown-switched"; afterMs: number } & WorkerRef)
  | ({ type: "worker-recycling"; why: string } & WorkerRef)
  | ({ type: "worker-leaked"; pids: number[] } & WorkerRef)
  | ({ type: "worker-starved"; afterMs: number; pressure: number } & WorkerRef)
  | { type: "program-failed"; program: string; why: string }
  | { type: "program-stopped"; program: string };

export type EventSink = (event: SupervisorEvent) => void;

/** Fans one event out to every subscriber; a subscriber that throws does not stop the others. */
export class EventBus {
  private readonly sinks: EventSink[] = [];

  subscribe(sink: EventSink): void {
    this.sinks.push(sink);
  }

  readonly emit: EventSink = (event) => {
    for (const sink of this.sinks) {
      try {
        sink(event);
      } catch (err) {
        process.stderr.write(`vigild: event subscriber failed on ${event.type}: ${(err as Error).stack ?? String(err)}\n`);
      }
    }
  };
}
