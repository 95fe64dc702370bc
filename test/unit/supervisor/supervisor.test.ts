// The supervisor on the fake clock: a reload as a difference, and one view of
// every slot state that vigilctl status and vigil_workers both show.
import { expect } from "chai";
import { WORKER_STATES, type WorkerStateLabel } from "../../../daemon/core/vocabulary.js";
import { Metrics } from "../../../daemon/metrics/metrics.js";
import { describeSupervisor } from "../../../daemon/supervisor/describe.js";
import { Supervisor } from "../../../daemon/supervisor/supervisor.js";
import { config, eventsOf, rig, type Rig } from "../../helpers/fake-supervision.js";

function supervisor(r: Rig, yaml: string): Supervisor {
  return new Supervisor(config(yaml), {
    clock: r.clock,
    emit: (event) => r.events.push(event),
    edges: r.edges,
    baseEnv: { PATH: "/usr/bin:/bin" },
    output: { route: { kind: "log" }, log: (_lines, taken) => taken() },
    sockets: { acquire: () => ({ fds: [], release: () => undefined }) },
  });
}

const prog = (name: string, body: string): string => `  ${name}:\n    command: [/bin/${name}]\n${body.replace(/^/gm, "    ")}\n`;

describe("supervisor on a fake clock", () => {
  it("a reload starts added programs, stops removed ones and replaces only changed ones", async () => {
    const r = rig();
    const s = supervisor(r, `programs:\n${prog("keep", 'protocol: "off"')}${prog("change", 'protocol: "off"')}${prog("drop", 'protocol: "off"')}`);
    s.start();
    r.clock.advance(0);
    const before = new Map(r.host.live().map((p) => [p.spec.env.VIGIL_PROGRAM, p.pid]));
    const next = config(`programs:\n${prog("keep", 'protocol: "off"')}${prog("change", 'protocol: "off"\nenv: { A: "1" }')}${prog("add", 'protocol: "off"')}`);
    const { plan, settled } = s.applyConfig(next);
    expect(plan).to.deep.equal({ added: ["add"], removed: ["drop"], changed: ["change"], unchanged: ["keep"] });
    for (let i = 0; i < 5; i++) r.clock.advance(1);
    await settled;
    const after = new Map(r.host.live().map((p) => [p.spec.env.VIGIL_PROGRAM, p.pid]));
    expect(after.get("keep")).to.equal(before.get("keep"));
    expect(after.get("change")).to.not.equal(before.get("change"));
    expect(after.has("drop")).to.equal(false);
    expect(after.has("add")).to.equal(true);
    expect(r.host.processes.find((p) => p.pid === before.get("drop"))!.signals).to.deep.equal(["SIGTERM"]);
  });

  it("vigilctl status and vigil_workers agree on every slot state", async () => {
    const r = rig();
    r.host.behaviours.set("starting", { ready: false, handlersMs: 0 });
    r.host.behaviours.set("stopping", { ready: true, handlersMs: null });
    r.host.behaviours.set("killing", { ready: true, handlersMs: null, unkillable: true });
    const s = supervisor(
      r,
      `programs:
${prog("running", 'protocol: "on"\nheartbeat_timeout: 0')}
${prog("starting", 'protocol: "on"\nheartbeat_timeout: 0\nready_timeout: 1h')}
${prog("hung", 'protocol: "on"\nheartbeat_timeout: 1s\nstack_dump_grace: 10s')}
${prog("stopping", 'protocol: "on"\nheartbeat_timeout: 0\nshutdown: { handlers_timeout: 1h, timeout: 1h }')}
${prog("killing", 'protocol: "on"\nheartbeat_timeout: 0\nshutdown: { handlers_timeout: 100ms, teardown_hang_after: 50ms, timeout: 100ms }')}
${prog("backoff", 'protocol: "off"\nrestart: { backoff_initial: 1h, backoff_max: 1h }')}
${prog("failed", 'protocol: "off"\nrestart: { backoff_initial: 0, limit: 1 in 1h }')}
${prog("stopped", 'protocol: "off"\nrestart: { policy: never }')}`,
    );
    s.start();
    r.clock.advance(0);
    const one = (program: string) => r.host.live(program)[0]!;
    // Replacements whose old workers then sit in their stop.
    void s.restartProgram("stopping");
    void s.restartProgram("killing");
    one("backoff").exit(1);
    one("failed").exit(1);
    r.clock.advance(0);
    one("failed").exit(1);
    one("stopped").exit(0);
    // The hung worker never beats: 1 s later it is being dumped (hung) for 10 s.
    r.clock.advance(1_000);
    r.clock.advance(10);

    const metrics = new Metrics();
    metrics.attach(s);
    const gauge = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === "vigil_workers")!;
    const fromMetrics = new Map<string, number>();
    for (const v of gauge.values) if (v.value > 0) fromMetrics.set(`${String(v.labels.program)} ${String(v.labels.state)}`, v.value);
    const fromStatus = new Map<string, number>();
    for (const w of describeSupervisor(s, r.clock.now()).workers) {
      const key = `${w.program} ${w.state}`;
      fromStatus.set(key, (fromStatus.get(key) ?? 0) + 1);
    }
    expect([...fromStatus].sort()).to.deep.equal([...fromMetrics].sort());
    const seen = new Set([...fromStatus.keys()].map((k) => k.split(" ")[1] as WorkerStateLabel));
    expect([...seen].sort(), "every slot state is covered").to.deep.equal([...WORKER_STATES].sort());
    // Each program shows the state it is named for.
    for (const state of WORKER_STATES) expect(fromStatus.get(`${state} ${state}`), state).to.be.at.least(1);
    expect(eventsOf(r, "worker-unkillable")).to.have.length(0);
  });
});
