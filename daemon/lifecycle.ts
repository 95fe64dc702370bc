// vigild's own lifecycle as a pure state machine, and the one line that says
// what it is doing (systemd's STATUS=, vigilctl's header). No I/O here.
//
//   starting -> running <-> reloading
//       |          |            |
//       +----------+------------+--> stopping -> forcing (second SIGTERM)
//                                        |          |
//                                        +----------+--> stopped
import { assertNever } from "./core/assert.js";
import type { DaemonStateName } from "./core/vocabulary.js";

export interface DaemonState {
  name: DaemonStateName;
  /** SIGHUPs during a reload collapse into one more reload, run when this one is done. */
  reloadQueued: boolean;
  /** What vigild exits with once stopped: 1 after a failed start. */
  exitStatus: number;
}

export type DaemonEvent = "all-ready" | "start-failed" | "term" | "hup" | "reload-done" | "stopped";

export type DaemonAction =
  | "announce-ready"
  | "begin-stop"
  | "report-failed-start"
  | "force"
  | "begin-reload"
  | "announce-reloaded"
  | "refuse-reload"
  | "finish";

export interface DaemonStep {
  next: DaemonState;
  actions: DaemonAction[];
}

export const INITIAL_DAEMON_STATE: DaemonState = { name: "starting", reloadQueued: false, exitStatus: 0 };

/**
 * A second SIGTERM/SIGINT during a stop forces it; SIGHUPs during a reload
 * collapse into one more reload; a SIGHUP during start or stop is refused
 * (the configuration is read at the next start).
 */
export function daemonStep(state: DaemonState, event: DaemonEvent): DaemonStep {
  const to = (name: DaemonStateName, ...actions: DaemonAction[]): DaemonStep => ({ next: { ...state, name }, actions });
  const stay: DaemonStep = { next: state, actions: [] };
  switch (event) {
    case "all-ready":
      return state.name === "starting" ? to("running", "announce-ready") : stay;
    case "start-failed":
      if (state.name !== "starting") return stay;
      return { next: { ...state, name: "stopping", exitStatus: 1 }, actions: ["report-failed-start", "begin-stop"] };
    case "term":
      if (state.name === "starting" || state.name === "running" || state.name === "reloading") return to("stopping", "begin-stop");
      if (state.name === "stopping") return to("forcing", "force");
      return stay;
    case "hup":
      if (state.name === "running") return to("reloading", "begin-reload");
      if (state.name === "reloading") return { next: { ...state, reloadQueued: true }, actions: [] };
      return { next: state, actions: ["refuse-reload"] };
    case "reload-done":
      if (state.name !== "reloading") return stay;
      if (state.reloadQueued) return { next: { ...state, reloadQueued: false }, actions: ["announce-reloaded", "begin-reload"] };
      return to("running", "announce-reloaded");
    case "stopped":
      return to("stopped", "finish");
    default:
      return assertNever(event, "daemon event");
  }
}

/** One line for STATUS= and vigilctl. */
export function statusLine(input: {
  state: DaemonStateName;
  ready: number;
  expected: number;
  alive: number;
  stopTotal: number;
  failed: readonly string[];
  note: string | null;
}): string {
  const failed = input.failed.length > 0 ? `; FAILED: ${input.failed.join(", ")}` : "";
  const note = input.note ? `; ${input.note}` : "";
  switch (input.state) {
    case "starting":
      return `starting: ${input.ready} of ${input.expected} workers ready${failed}`;
    case "running":
      return `${input.ready} of ${input.expected} workers ready${failed}${note}`;
    case "reloading":
      return `reloading: ${input.ready} of ${input.expected} workers ready`;
    case "stopping":
    case "forcing":
      return `stopping: ${input.alive} of ${input.stopTotal} workers left${input.state === "forcing" ? " (forced)" : ""}`;
    case "stopped":
      return "stopped";
    default:
      return assertNever(input.state, "daemon state");
  }
}
