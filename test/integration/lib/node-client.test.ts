// The Node worker client (lib/node/worker.ts) against this test acting as
// vigild: a socketpair on fd 3, a heartbeat file on fd 4, and the shutdown
// message written by hand. Fixtures are plain .mjs files in
// test/fixtures/workers that import the compiled client from dist/.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { expect } from "chai";
import {
  HEARTBEAT_SLOT_BYTES,
  LineDecoder,
  encodeShutdown,
  parseWorkerMessage,
  type ShutdownReason,
  type TeardownMode,
  type WorkerMessage,
} from "../../../lib/protocol/index.js";
import { REPO } from "../../helpers/repo.js";

const repoRoot = REPO;
const fixturesDir = path.join(repoRoot, "test", "fixtures", "workers");
const clientModule = path.join(repoRoot, "dist", "lib", "node", "worker.js");
const PKG_VERSION = (JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string }).version;

const SLOT = 2;
const SLOTS = 4;
const INTERVAL_MS = 100;

interface Received {
  message: WorkerMessage;
  at: number; // ms, performance.now()
}

function nowNs(): bigint {
  return process.hrtime.bigint();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One spawned fixture and everything this fake vigild sees of it. */
class Fixture {
  readonly child: ChildProcess;
  readonly socket: net.Socket | undefined;
  readonly messages: Received[] = [];
  readonly protocolErrors: string[] = [];
  stdout = "";
  stderr = "";
  exit: { code: number | null; signal: NodeJS.Signals | null; at: number } | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly decoder = new LineDecoder();

  constructor(
    file: string,
    args: string[],
    readonly heartbeat: HeartbeatFile | undefined,
    opts: { attach?: boolean; env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {},
  ) {
    const attach = opts.attach ?? true;
    const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
    for (const name of Object.keys(env)) if (name.startsWith("VIGIL_")) delete env[name];
    if (attach) {
      Object.assign(env, {
        VIGIL_FD: "3",
        VIGIL_PROGRAM: "t",
        VIGIL_WORKER: "0",
        VIGIL_TEARDOWN: "destroy",
      });
      if (heartbeat !== undefined) {
        Object.assign(env, {
          VIGIL_HEARTBEAT_FD: "4",
          VIGIL_HEARTBEAT_SLOT: String(SLOT),
          VIGIL_HEARTBEAT_INTERVAL_MS: String(INTERVAL_MS),
        });
      }
    }
    const stdio: ("ignore" | "pipe" | number)[] = ["ignore", "pipe", "pipe"];
    if (attach) stdio.push("pipe");
    if (attach && heartbeat !== undefined) stdio.push(heartbeat.fd);
    const target = file === "-e" ? ["-e"] : [path.join(fixturesDir, file)];
    this.child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...target, ...args], { stdio, detached: true, env });
    this.child.stdout?.on("data", (chunk: Buffer) => {
      this.stdout += chunk.toString("utf8");
      this.notify();
    });
    this.child.stderr?.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString("utf8");
      this.notify();
    });
    this.child.on("exit", (code, signal) => {
      this.exit = { code, signal, at: performance.now() };
      this.notify();
    });
    const sock = attach ? this.child.stdio[3] : undefined;
    if (sock instanceof net.Socket) {
      this.socket = sock;
      sock.on("data", (chunk: Buffer) => {
        for (const decoded of this.decoder.push(chunk)) {
          if (decoded.kind === "oversized") {
            this.protocolErrors.push(`oversized ${decoded.bytes}`);
            continue;
          }
          const parsed = parseWorkerMessage(decoded.line);
          if (parsed.ok) this.messages.push({ message: parsed.message, at: performance.now() });
          else this.protocolErrors.push(parsed.error);
        }
        this.notify();
      });
      sock.on("error", () => {});
    } else {
      this.socket = undefined;
    }
  }

  get pid(): number {
    const pid = this.child.pid;
    if (pid === undefined) throw new Error("fixture did not start");
    return pid;
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /**
   * Resolves with check()'s value once it is not undefined, re-checking on
   * every output, message or exit of the child. Fails after timeoutMs.
   */
  waitFor<T>(what: string, check: () => T | undefined, timeoutMs = 5000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const attempt = (): void => {
        let value: T | undefined;
        try {
          value = check();
        } catch (err) {
          finish();
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        if (value !== undefined) {
          finish();
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}\n--- stdout:\n${this.stdout}--- stderr:\n${this.stderr}` +
              `--- messages: ${JSON.stringify(this.messages.map((m) => m.message))}\n--- exit: ${JSON.stringify(this.exit)}`,
          ),
        );
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(attempt);
      };
      this.waiters.add(attempt);
      attempt();
    });
  }

  waitForStdout(text: string, timeoutMs?: number): Promise<true> {
    return this.waitFor(`stdout ${JSON.stringify(text)}`, () => (this.stdout.includes(text) ? true : undefined), timeoutMs);
  }

  waitForStderr(text: string, timeoutMs?: number): Promise<true> {
    return this.waitFor(`stderr ${JSON.stringify(text)}`, () => (this.stderr.includes(text) ? true : undefined), timeoutMs);
  }

  waitForMessage<K extends WorkerMessage["type"]>(
    type: K,
    timeoutMs?: number,
  ): Promise<{ message: Extract<WorkerMessage, { type: K }>; at: number }> {
    return this.waitFor(`message ${type}`, () => {
      const found = this.messages.find((r) => r.message.type === type);
      if (found === undefined) return undefined;
      return { message: found.message as Extract<WorkerMessage, { type: K }>, at: found.at };
    }, timeoutMs);
  }

  waitForExit(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }> {
    return this.waitFor("exit", () => this.exit, timeoutMs);
  }

  async started(): Promise<void> {
    await this.waitForStdout(`pid=${this.pid}`);
  }

  sendShutdown(reason: ShutdownReason, teardown: TeardownMode, handlersTimeoutMs = 2000, deadlineMs = 5000): number {
    if (this.socket === undefined) throw new Error("not attached");
    this.socket.write(encodeShutdown({ reason, teardown, handlersTimeoutMs, deadlineMs }));
    return performance.now();
  }

  types(): string[] {
    return this.messages.map((r) => r.message.type);
  }

  /** Kills the fixture's whole process group, whatever state it is in. */
  kill(): void {
    try {
      process.kill(-this.pid, "SIGKILL");
    } catch {
      // already gone
    }
    this.socket?.destroy();
  }
}

/** The shared heartbeat file vigild would own, on fd `fd` of this process. */
class HeartbeatFile {
  readonly path = path.join(os.tmpdir(), `vigil-node-client-${process.pid}-${randomBytes(4).toString("hex")}.hb`);
  readonly fd: number;

  constructor() {
    this.fd = fs.openSync(this.path, "w+");
    fs.writeSync(this.fd, Buffer.alloc(HEARTBEAT_SLOT_BYTES * SLOTS), 0, HEARTBEAT_SLOT_BYTES * SLOTS, 0);
  }

  read(slot = SLOT): bigint {
    const buf = Buffer.alloc(HEARTBEAT_SLOT_BYTES);
    fs.readSync(this.fd, buf, 0, HEARTBEAT_SLOT_BYTES, slot * HEARTBEAT_SLOT_BYTES);
    return buf.readBigUInt64LE(0);
  }

  /** Polls the slot until it differs from `from` (heartbeats are only in the file). */
  async advancedFrom(from: bigint, timeoutMs = 2000): Promise<bigint> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      const value = this.read();
      if (value !== from) return value;
      if (performance.now() > end) throw new Error(`heartbeat slot stuck at ${from}`);
      await sleep(10);
    }
  }

  close(): void {
    fs.closeSync(this.fd);
    fs.rmSync(this.path, { force: true });
  }
}

describe("Node worker client (vigil/worker)", function () {
  this.timeout(15000);
  let started: Fixture[] = [];
  let heartbeats: HeartbeatFile[] = [];

  function run(file: string, args: string[] = [], opts: { attach?: boolean; heartbeat?: boolean; nodeArgs?: string[] } = {}): Fixture {
    const hb = (opts.attach ?? true) && (opts.heartbeat ?? true) ? new HeartbeatFile() : undefined;
    if (hb !== undefined) heartbeats.push(hb);
    const fixture = new Fixture(file, args, hb, opts);
    started.push(fixture);
    return fixture;
  }

  afterEach(function () {
    for (const fixture of started) fixture.kill();
    for (const hb of heartbeats) hb.close();
    started = [];
    heartbeats = [];
  });

  it("says hello, then ready, then status", async function () {
    const w = run("node_ok.mjs", ["--status", "warming up"]);
    await w.started();
    await w.waitForMessage("status");
    expect(w.messages[0]?.message).to.deep.equal({ type: "hello", client: "node", version: PKG_VERSION });
    expect(w.types().slice(0, 3)).to.deep.equal(["hello", "ready", "status"]);
    expect(w.messages[2]?.message).to.deep.equal({ type: "status", text: "warming up" });
    expect(w.protocolErrors).to.deep.equal([]);
    expect(w.stdout).to.include("attached=true program=t worker=0");
  });

  it("writes CLOCK_MONOTONIC heartbeats into its slot only, and they advance", async function () {
    const w = run("node_ok.mjs");
    await w.waitForMessage("ready");
    const hb = w.heartbeat;
    if (hb === undefined) throw new Error("no heartbeat file");
    const first = await hb.advancedFrom(0n);
    const skew = Number(nowNs() - first) / 1e6;
    expect(skew, "first heartbeat vs our hrtime, ms").to.be.within(-5, 300);
    const second = await hb.advancedFrom(first);
    expect(second > first).to.equal(true);
    const step = Number(second - first) / 1e6;
    expect(step, "ms between heartbeats").to.be.within(INTERVAL_MS * 0.5, INTERVAL_MS * 3);
    expect(Number(nowNs() - second) / 1e6).to.be.below(300);
    for (const other of [0, 1, 3]) expect(hb.read(other)).to.equal(0n);
  });

  it("on shutdown (destroy) runs the handler, sends handlers-done and teardown, and exits 0", async function () {
    const w = run("node_ok.mjs", ["--handler", "--handler-delay", "300"]);
    await w.waitForMessage("ready");
    const sentAt = w.sendShutdown("restart", "destroy", 2000, 5000);
    await w.waitForStdout("handler ran event=process_stopping reason=restart teardown=destroy deadline=5000");
    const done = await w.waitForMessage("handlers-done");
    expect(done.message.timedOut).to.equal(false);
    expect(done.at - sentAt, "handlers-done waits for the async handler").to.be.at.least(280);
    await w.waitForMessage("teardown");
    const exit = await w.waitForExit(3000);
    expect(exit.code).to.equal(0);
    expect(w.types()).to.deep.equal(["hello", "ready", "handlers-done", "teardown"]);
    expect(w.stderr).to.equal("");
  });

  it("a handler that throws is reported and does not stop the others", async function () {
    const w = run("node_ok.mjs", ["--handler-throw", "--handler"]);
    await w.waitForMessage("ready");
    w.sendShutdown("stop", "destroy");
    await w.waitForStdout("handler ran event=process_stopping reason=stop");
    await w.waitForStderr("vigil: shutdown handler failed: Error: fixture handler failure");
    expect((await w.waitForMessage("handlers-done")).message.timedOut).to.equal(false);
    expect((await w.waitForExit(3000)).code).to.equal(0);
  });

  it("with teardown skip sends handlers-done and exits 0 at once", async function () {
    const w = run("node_ok.mjs", ["--handler"]);
    await w.waitForMessage("ready");
    w.sendShutdown("recycle", "skip");
    await w.waitForStdout("handler ran event=process_stopping reason=recycle teardown=skip");
    const done = await w.waitForMessage("handlers-done");
    expect(done.message.timedOut).to.equal(false);
    const exit = await w.waitForExit(2000);
    expect(exit.code).to.equal(0);
    expect(exit.at - done.at, "exit after handlers-done, ms").to.be.below(300);
    expect(w.types()).to.deep.equal(["hello", "ready", "handlers-done"]);
  });

  it("cuts off a handler that never settles at handlers_timeout_ms (timed_out true)", async function () {
    const w = run("node_handler_hang.mjs");
    await w.waitForMessage("ready");
    const sentAt = w.sendShutdown("stop", "destroy", 500, 5000);
    await w.waitForStdout("handler started, never settles");
    const done = await w.waitForMessage("handlers-done", 3000);
    expect(done.message.timedOut).to.equal(true);
    expect(done.at - sentAt, "ms until handlers-done").to.be.within(450, 900);
    await w.waitForMessage("teardown");
    // The pending promise keeps nothing alive: teardown drains and exits.
    expect((await w.waitForExit(3000)).code).to.equal(0);
  });

  it("a live setInterval keeps a destroy teardown going; SIGUSR2 then shows the timer", async function () {
    const w = run("node_interval_teardown.mjs");
    await w.waitForMessage("ready");
    w.sendShutdown("stop", "destroy");
    await w.waitForStdout("handler ran reason=stop, interval left running");
    await w.waitForMessage("handlers-done");
    await w.waitForMessage("teardown");
    // What vigild measures as a teardown hang: the process simply stays.
    await sleep(1000);
    expect(w.exit).to.equal(undefined);
    process.kill(w.pid, "SIGUSR2");
    await w.waitForStderr(`vigil: stack dump (SIGUSR2) pid=${w.pid}`);
    await w.waitForStderr("    timer ref");
    expect(w.exit).to.equal(undefined);
  });

  it("a blocked event loop stops the heartbeat and the watchdog prints the blocked stack", async function () {
    const w = run("node_block.mjs", ["--after", "300"]);
    await w.waitForMessage("ready");
    const hb = w.heartbeat;
    if (hb === undefined) throw new Error("no heartbeat file");
    await hb.advancedFrom(0n);
    await w.waitForStdout("blocking now");
    const last = hb.read();
    await w.waitForStderr("vigil: main thread blocked for", 3000);
    await w.waitForStderr("at spinForever (", 3000);
    const match = /vigil: main thread blocked for (\d+) ms, stack:\n((?: {2}.*\n)+)/.exec(w.stderr);
    expect(match, w.stderr).to.not.equal(null);
    expect(Number(match?.[1])).to.be.within(3 * INTERVAL_MS, 3 * INTERVAL_MS + 300);
    const frames = match?.[2] ?? "";
    expect(frames.split("\n")[0]).to.match(/^ {2}at spinForever \(file:\/\/.*node_block\.mjs:\d+:\d+\)$/);
    expect(frames).to.include("listOnTimeout");
    // The loop is still blocked (the watchdog resumed it into its busy loop).
    expect(hb.read()).to.equal(last);
    expect(Number(nowNs() - last) / 1e6).to.be.above(3 * INTERVAL_MS);
    // One report per stall.
    await sleep(5 * INTERVAL_MS);
    expect(w.stderr.split("main thread blocked").length - 1).to.equal(1);
    expect(hb.read()).to.equal(last);
    expect(w.exit).to.equal(undefined);
  });

  it("SIGUSR2 on an idle worker prints the stack dump and the worker lives on", async function () {
    const w = run("node_ok.mjs");
    await w.waitForMessage("ready");
    process.kill(w.pid, "SIGUSR2");
    await w.waitForStderr(`vigil: stack dump (SIGUSR2) pid=${w.pid}\n`);
    await w.waitFor("the alive line", () => (/^ {2}keeping the process alive: .*\bTimeout\b/m.test(w.stderr) ? true : undefined));
    const dump = w.stderr.slice(w.stderr.indexOf("vigil: stack dump"));
    const lines = dump.trimEnd().split("\n");
    for (const line of lines.slice(1)) expect(line.startsWith("  "), line).to.equal(true);
    expect(dump).to.include("  javascript stack:\n    (none below the signal handler: the event loop was idle, waiting)\n");
    expect(dump).to.include("  libuv handles (active):");
    expect(dump).to.match(/^ {4}timer ref repeat=0/m); // the app's setInterval
    expect(dump).to.match(/^ {4}pipe unref fd=3$/m); // vigil's socket, not keeping it alive
    expect(dump).to.not.include("watchdog blocked");
    const hb = w.heartbeat;
    if (hb === undefined) throw new Error("no heartbeat file");
    await hb.advancedFrom(await hb.advancedFrom(0n));
    expect(w.exit).to.equal(undefined);
    w.sendShutdown("stop", "destroy");
    expect((await w.waitForExit(3000)).code).to.equal(0);
  });

  it("exits 70 within 1 s when the supervisor closes its end", async function () {
    const w = run("node_ok.mjs");
    await w.waitForMessage("ready");
    const closedAt = performance.now();
    w.socket?.destroy();
    const exit = await w.waitForExit(2000);
    expect(exit.code).to.equal(70);
    expect(exit.at - closedAt).to.be.below(1000);
    expect(w.stderr).to.equal("vigil: supervisor gone, exiting\n");
  });

  it("reports a bad line from the supervisor and carries on", async function () {
    const w = run("node_ok.mjs", ["--handler"]);
    await w.waitForMessage("ready");
    w.socket?.write('{"type":"bogus"}\nnot json\n');
    await w.waitForStderr('vigil: protocol error from supervisor: unknown message type "bogus"');
    await w.waitForStderr("vigil: protocol error from supervisor: not JSON");
    w.sendShutdown("reload", "destroy");
    await w.waitForStdout("handler ran event=process_stopping reason=reload");
    expect((await w.waitForExit(3000)).code).to.equal(0);
  });

  it("its own handles never keep the process alive", async function () {
    const code = `import { ready, attached } from ${JSON.stringify(pathToFileURL(clientModule).href)};
      console.log("fixture inline pid=" + process.pid + " attached=" + attached); ready();`;
    const w = run("-e", [code], { nodeArgs: ["--input-type=module"] });
    await w.waitForStdout("attached=true");
    await w.waitForMessage("ready");
    const exit = await w.waitForExit(2000);
    expect(exit.code).to.equal(0);
    expect(w.stderr).to.equal("");
  });

  it("while vigild does not read, status() holds only the latest text, which arrives when vigild reads again", async function () {
    // 20,000 statuses of about 1 KiB: some 20 MiB if every one waited in memory.
    const code = `import { ready, status } from ${JSON.stringify(pathToFileURL(clientModule).href)};
      const held = () => { globalThis.gc(); const m = process.memoryUsage(); return m.heapUsed + m.external; };
      setInterval(() => {}, 1000);
      ready();
      await new Promise((done) => setTimeout(done, 200));
      const before = held();
      for (let i = 0; i < 20000; i++) status("spam " + i + " " + "x".repeat(1000));
      console.log("fixture inline pid=" + process.pid + " grew=" + (held() - before));`;
    const w = run("-e", [code], { nodeArgs: ["--input-type=module", "--expose-gc"] });
    await w.waitForMessage("ready");
    w.socket!.pause(); // vigild stops reading
    const grew = Number((await w.waitFor("the growth", () => /grew=(-?\d+)/.exec(w.stdout)?.[1]))!);
    expect(grew, "bytes held after 20,000 statuses").to.be.below(4 * 1024 * 1024);
    w.socket!.resume();
    await w.waitFor("the last status", () => w.messages.find((r) => r.message.type === "status" && r.message.text.startsWith("spam 19999 ")));
    const statuses = w.messages.filter((r) => r.message.type === "status").length;
    expect(statuses, "statuses received (the waiting ones were replaced)").to.be.below(20000);
    expect(w.protocolErrors).to.deep.equal([]);
    w.sendShutdown("stop", "skip");
    expect((await w.waitForExit(3000)).code).to.equal(0);
  });

  it("a crashing fixture exits 3 after ready", async function () {
    const w = run("node_crash.mjs", ["--after", "100"]);
    await w.waitForMessage("ready");
    expect((await w.waitForExit(3000)).code).to.equal(3);
  });

  it("without heartbeat variables it still attaches and works", async function () {
    const w = run("node_ok.mjs", ["--handler"], { heartbeat: false });
    await w.waitForMessage("ready");
    w.sendShutdown("stop", "skip");
    await w.waitForMessage("handlers-done");
    expect((await w.waitForExit(2000)).code).to.equal(0);
  });

  it("does not hand its descriptors to child processes through the environment", async function () {
    const code = `import ${JSON.stringify(pathToFileURL(clientModule).href)};
      console.log("fixture inline pid=" + process.pid + " env=" + Object.keys(process.env).filter((k) => k.startsWith("VIGIL_")).sort().join(","));`;
    const w = run("-e", [code], { nodeArgs: ["--input-type=module"] });
    await w.waitForStdout("env=");
    await w.waitForExit(2000);
    expect(w.stdout).to.include("env=VIGIL_PROGRAM,VIGIL_TEARDOWN,VIGIL_WORKER\n");
  });

  it("says the version of the package.json two levels above dist/, as `make install` lays it out", async function () {
    const pkg = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-pkg-"));
    try {
      fs.writeFileSync(path.join(pkg, "package.json"), JSON.stringify({ name: "vigil", version: "9.8.7-test", type: "module" }));
      for (const dir of ["node", "protocol"]) {
        fs.cpSync(path.join(repoRoot, "dist", "lib", dir), path.join(pkg, "dist", "lib", dir), { recursive: true });
      }
      const code = `import { ready } from ${JSON.stringify(pathToFileURL(path.join(pkg, "dist", "lib", "node", "worker.js")).href)}; ready();`;
      const w = run("-e", [code], { nodeArgs: ["--input-type=module"] });
      await w.waitForMessage("ready");
      expect(w.messages[0]?.message).to.deep.equal({ type: "hello", client: "node", version: "9.8.7-test" });
      expect((await w.waitForExit(2000)).code).to.equal(0);
    } finally {
      fs.rmSync(pkg, { recursive: true, force: true });
    }
  });

  it("subscribeShutdown returns its unsubscribe: that handler is not called, the others are", async function () {
    const code = `import { ready, subscribeShutdown } from ${JSON.stringify(pathToFileURL(clientModule).href)};
      const keep = setInterval(() => {}, 1000);
      const first = () => console.log("first ran");
      const off = subscribeShutdown(first);
      subscribeShutdown(first);
      subscribeShutdown(() => { clearInterval(keep); console.log("last ran"); });
      off(); off();
      console.log("fixture inline pid=" + process.pid); ready();`;
    const w = run("-e", [code], { nodeArgs: ["--input-type=module"] });
    await w.waitForMessage("ready");
    w.sendShutdown("stop", "destroy");
    expect((await w.waitForExit(3000)).code).to.equal(0);
    // The same function subscribed twice: unsubscribing one leaves the other.
    expect(w.stdout.split("\n").filter((l) => l.endsWith(" ran"))).to.deep.equal(["first ran", "last ran"]);
  });

  describe("outside vigil (no VIGIL_FD)", function () {
    it("a fixture imports the client and every call is a no-op", async function () {
      const w = run("node_ok.mjs", ["--status", "x"], { attach: false });
      await w.waitForStdout("ready sent");
      expect(w.stdout).to.include("attached=false program=undefined worker=undefined");
      expect(w.stderr).to.equal("");
    });

    it("in this process: attached is false and calls do nothing", async function () {
      if (process.env.VIGIL_FD !== undefined) this.skip();
      const client = await import("../../../lib/node/worker.js");
      expect(client.attached).to.equal(false);
      client.ready();
      client.status("nothing");
      client.subscribeShutdown(() => {});
      expect(client.program).to.equal(process.env.VIGIL_PROGRAM);
    });
  });
});
