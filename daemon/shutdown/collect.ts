// Builds the last-shutdown report from the worker-exited events of a stop.
import type { SupervisorEvent } from "../core/events.js";
import { OUTCOMES, type Outcome } from "../core/vocabulary.js";
import { REPORT_VERSION, type LastShutdownReport, type WorkerShutdownRecord } from "./report.js";

type Exited = Extract<SupervisorEvent, { type: "worker-exited" }>;

export function workerRecord(event: Exited): WorkerShutdownRecord | null {
  const { stop, timeline: t, outcome } = event;
  if (stop === null || outcome === null || t.stopRequestedAt === null || t.exitedAt === null) return null;
  const from = t.stopRequestedAt;
  const rel = (at: number | null): number | null => (at === null ? null : Math.round(at - from));
  return {
    program: event.program,
    worker: event.worker,
    pid: event.pid,
    reason: stop.reason,
    teardown: stop.teardown,
    signal: stop.signal,
    outcome,
    hang: event.hang,
    handlers_done_ms: rel(t.handlersDoneAt),
    teardown_begun_ms: rel(t.teardownAt),
    killed_ms: rel(t.killedAt),
    exited_ms: Math.round(t.exitedAt - from),
    handlers_ms: event.durations.handlersMs === null ? null : Math.round(event.durations.handlersMs),
    teardown_ms: event.durations.teardownMs === null ? null : Math.round(event.durations.teardownMs),
    exit_code: event.code,
    exit_signal: event.signal,
  };
}

export function countOutcomes(records: readonly WorkerShutdownRecord[]): Record<Outcome, number> {
  const counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  for (const r of records) counts[r.outcome]++;
  return counts;
}

/**
 * "stopped 6 workers in 3.02 s: 4 clean, 1 skipped, 1 forced (teardown hang: web/2)";
 * "stopped 1 worker in 8.01 s: 1 unkillable (teardown hang: web/0, unkillable: web/0 pid 4242)"
 */
export function summarize(records: readonly WorkerShutdownRecord[], durationMs: number): string {
  const outcomes = countOutcomes(records);
  const parts = OUTCOMES.filter((o) => outcomes[o] > 0).map((o) => `${outcomes[o]} ${o}`);
  const hangs = records.filter((r) => r.hang !== null).map((r) => `${r.hang} hang: ${r.program}/${r.worker}`);
  // With the pid: that process may still be there, for someone to find what holds it.
  const stuck = records.filter((r) => r.outcome === "unkillable").map((r) => `unkillable: ${r.program}/${r.worker} pid ${r.pid ?? "?"}`);
  const notes = [...hangs, ...stuck];
  const noun = records.length === 1 ? "worker" : "workers";
  return (
    `stopped ${records.length} ${noun} in ${(durationMs / 1000).toFixed(2)} s` +
    (parts.length > 0 ? `: ${parts.join(", ")}` : "") +
    (notes.length > 0 ? ` (${notes.join(", ")})` : "")
  );
}

export function buildReport(args: {
  records: readonly WorkerShutdownRecord[];
  startedAt: Date;
  endedAt: Date;
  durationMs: number;
  forcedBySignal: boolean;
  teardownSwitched: readonly string[];
}): LastShutdownReport {
  const records = [...args.records].sort((a, b) => a.program.localeCompare(b.program) || a.worker - b.worker);
  return {
    version: REPORT_VERSION,
    vigild_pid: process.pid,
    started_at: args.startedAt.toISOString(),
    ended_at: args.endedAt.toISOString(),
    duration_ms: Math.round(args.durationMs),
    forced_by_signal: args.forcedBySignal,
    summary: summarize(records, args.durationMs),
    outcomes: countOutcomes(records),
    teardown_switched: [...args.teardownSwitched],
    workers: records,
  };
}
