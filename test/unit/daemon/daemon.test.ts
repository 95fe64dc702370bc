// vigild's Daemon on the fake clock and fake host: what systemd is told and
// when (READY=1, RELOADING=1, STOPPING=1 with its budget), a reload kept or
// refused, a second SIGTERM, and the exit status. No process, no bus, no port.
import { expect } from "chai";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../../daemon/config/load.js";
import type { Config } from "../../../daemon/config/types.js";
import { Daemon } from "../../../daemon/daemon.js";
import type { Logger } from "../../../daemon/log/logger.js";
import type { Notifier } from "../../../daemon/systemd/notify.js";
import type { Behaviour } from "../../helpers/fake-host.js";
import { rig, type Rig } from "../../helpers/fake-supervision.js";

type Sent = Record<string, string | number>;

interface Harness {
  r: Rig;
  daemon: Daemon;
  sent: Sent[];
  logs: string[];
  signal: (which: "term" | "hup") => void;
  exit: Promise<number>;
  file: string;
}

function yaml(programs: string): string {
  return `metrics: { listen: "off" }\ndbus: { bus: none }\nprograms:\n${programs}`;
}

const TWO_WORKERS = `  app:
    command: [/bin/app]
    instances: 2
    protocol: "on"
    heartbeat_timeout: 0
    shutdown: { handlers_timeout: 1s, timeout: 3s }
`;

function start(programs: string = TWO_WORKERS, behaviour?: Behaviour): Harness {
  const r = rig();
  if (behaviour) r.host.fallback = behaviour;
  const dir = mkdtempSync(join(tmpdir(), "vigil-daemon-"));
  const file = join(dir, "vigil.yaml");
  const text = `state_dir: ${dir}/state\n${yaml(programs)}`;
  writeFileSync(file, text);
  const sent: Sent[] = [];
  const logs: string[] = [];
  const handlers = new Map<string, () => void>();
  const record = (level: string) => (message: string) => void logs.push(`${level}: ${message}`);
  const log: Logger = {
    error: record("error"),
    warn: record("warn"),
    info: record("info"),
    debug: () => undefined,
    setLevel: () => undefined,
    output: (_lines, taken) => taken(),
  };
  const notifier: Notifier = { send: (fields) => void sent.push(fields), watchdogMs: () => null };
  const load = (f: string): Config => parseConfig(readFileSync(f, "utf8"), f);
  const daemon = new Daemon({
    config: load(file),
    clock: r.clock,
    log,
    notifier,
    loadConfig: load,
    outputRoute: { kind: "log" },
    edges: r.edges,
    onSignal: (which, handler) => void handlers.set(which, handler),
    systemBus: false,
  });
  const exit = daemon.run();
  return { r, daemon, sent, logs, signal: (which) => handlers.get(which)!(), exit, file };
}

/** Lets the promises of run() and of the supervisor settle, then runs what is due now. */
async function turn(h: Harness, ms = 0): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
  h.r.clock.advance(ms);
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

const with_ = (h: Harness, key: string): Sent[] => h.sent.filter((s) => key in s);

describe("vigild's lifecycle on a fake clock", () => {
  it("says READY=1 once, when every worker is ready, not before", async () => {
    const h = start(TWO_WORKERS, { ready: false, handlersMs: 0 });
    await turn(h);
    expect(with_(h, "READY")).to.have.length(0);
    const [a, b] = h.r.host.live();
    a!.say({ type: "hello", client: "t", version: "1" });
    a!.say({ type: "ready" });
    await turn(h);
    expect(with_(h, "READY"), "one of two ready").to.have.length(0);
    expect(h.sent.at(-1)!.STATUS).to.equal("starting: 1 of 2 workers ready");
    b!.say({ type: "ready" });
    await turn(h);
    expect(with_(h, "READY")).to.deep.equal([{ READY: 1, STATUS: "2 of 2 workers ready" }]);
    expect(h.daemon.status().state).to.equal("running");
  });

  it("a stop asks systemd for the whole stop budget, stops every worker and exits 0 with a report", async () => {
    const h = start();
    await turn(h, 10);
    h.signal("term");
    await turn(h);
    const stopping = with_(h, "STOPPING");
    // 3 s timeout + 250 ms stack-dump grace + 5 s for an unkillable one + 5 s margin.
    expect(stopping).to.have.length(1);
    expect(stopping[0]!.EXTEND_TIMEOUT_USEC).to.equal((3_000 + 250 + 5_000 + 5_000) * 1000);
    for (let i = 0; i < 5; i++) await turn(h, 1);
    expect(await h.exit).to.equal(0);
    expect(h.logs).to.include("info: stopped 2 workers in 0.00 s: 2 clean");
    const report = JSON.parse(readFileSync(join(h.file, "../state/last-shutdown.json"), "utf8")) as { outcomes: Record<string, number> };
    expect(report.outcomes.clean).to.equal(2);
  });

  it("a second SIGTERM kills what is left at once and the report says so", async () => {
    const h = start(TWO_WORKERS, { ready: true, handlersMs: null });
    await turn(h, 10);
    h.signal("term");
    await turn(h, 100);
    expect(h.r.host.live()).to.have.length(2);
    h.signal("term");
    await turn(h);
    await turn(h);
    expect(h.r.host.live()).to.have.length(0);
    expect(await h.exit).to.equal(0);
    expect(h.logs).to.include("warn: second stop request: killing every remaining worker now");
    expect(h.sent.at(-1)!.STATUS).to.match(/^stopped 2 workers in 0\.10 s: 2 forced$/);
  });

  it("a program that fails at start stops vigild with exit status 1 and the reason in STATUS=", async () => {
    const h = start(
      `  app:
    command: [/bin/app]
    protocol: "on"
    heartbeat_timeout: 0
    restart: { backoff_initial: 0, limit: 1 in 1m }
`,
      { ready: false, handlersMs: 0 },
    );
    await turn(h);
    h.r.host.live()[0]!.exit(1);
    await turn(h);
    h.r.host.live()[0]!.exit(1);
    await turn(h);
    await turn(h);
    expect(await h.exit).to.equal(1);
    expect(h.sent.find((s) => s.ERRNO === 10)!.STATUS).to.equal("start failed: program app FAILED (2 restarts within 1m)");
    expect(String(h.sent.at(-1)!.STATUS)).to.match(/^start failed: program app FAILED .*; stopped 0 workers/);
  });

  it("a reload applies a changed program slot by slot and says READY=1 again when it has settled", async () => {
    const h = start();
    await turn(h, 10);
    writeFileSync(h.file, readFileSync(h.file, "utf8").replace("instances: 2", "instances: 3"));
    const result = h.daemon.reload();
    await turn(h);
    expect(with_(h, "RELOADING")).to.have.length(1);
    for (let i = 0; i < 5; i++) await turn(h, 1);
    expect(await result).to.deep.equal({ ok: true, summary: "changed app" });
    expect(h.r.host.live()).to.have.length(3);
    expect(with_(h, "READY")).to.have.length(2);
    expect(h.daemon.status().state).to.equal("running");
  });

  it("a bad reload keeps the running configuration and says why", async () => {
    const h = start();
    await turn(h, 10);
    const pids = h.r.host.live().map((p) => p.pid);
    writeFileSync(h.file, readFileSync(h.file, "utf8").replace("instances: 2", "instances: many"));
    const result = await h.daemon.reload();
    expect(result.ok).to.equal(false);
    await turn(h, 100);
    expect(h.r.host.live().map((p) => p.pid), "nothing was restarted").to.deep.equal(pids);
    expect(String(h.sent.at(-1)!.STATUS)).to.match(/reload failed: .*instances.*; running the previous configuration$/);
  });

  it("SIGHUPs during a reload collapse into one more reload", async () => {
    const h = start(TWO_WORKERS, { ready: true, handlersMs: 10 });
    await turn(h, 10);
    writeFileSync(h.file, readFileSync(h.file, "utf8").replace("instances: 2", "instances: 1"));
    h.signal("hup");
    h.signal("hup");
    h.signal("hup");
    for (let i = 0; i < 20; i++) await turn(h, 5);
    expect(with_(h, "RELOADING"), "the first, then one for the three that came during it").to.have.length(2);
    expect(h.daemon.status().state).to.equal("running");
  });
});
