// vigild's own lifecycle as a pure state machine, and the one line that says
// what it is doing (systemd's STATUS=, vigilctl's header). No I/O here.
import type { DaemonStateName } from "./control.js";

export type DaemonEvent = "all-ready" | "start-failed" | "term" | "hup" | "reload-done" | "stopped";
export type DaemonAction =
  | "none"
  | "announce-ready"
  | "begin-stop"
  | "begin-failed-start"
  | "force"
  | "begin-reload"
  | "queue-reload"
  | "finish-reload"
  | "ignore-hup"
  | "finish";

/**
 * The daemon's own lifecycle. A second SIGTERM/SIGINT during a stop forces
 * it; SIGHUPs during a reload collapse into one more reload; a SIGHUP during
 * start or stop is ignored (the configuration is read at the next start).
 */
export function daemonStep(state: DaemonStateName, event: DaemonEvent): { next: DaemonStateName; action: DaemonAction } {
  switch (event) {
    case "all-ready":
      return state === "starting" ? { next: "running", action: "announce-ready" } : { next: state, action: "none" };
    case "start-failed":
      return state === "starting" ? { next: "stopping", action: "begin-failed-start" } : { next: state, action: "none" };
    case "term":
      if (state === "starting" || state === "running" || state === "reloading") return { next: "stopping", action: "begin-stop" };
      if (state === "stopping") return { next: "forcing", action: "force" };
      return { next: state, action: "none" };
    case "hup":
      if (state === "running") return { next: "reloading", action: "begin-reload" };
      if (state === "reloading") return { next: "reloading", action: "queue-reload" };
      return { next: state, action: "ignore-hup" };
    case "reload-done":
      return state === "reloading" ? { next: "running", action: "finish-reload" } : { next: state, action: "none" };
    case "stopped":
      return { next: "stopped", action: "finish" };
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
  }
}
