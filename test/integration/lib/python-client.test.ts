// The Python client (lib/python/vigil.py) against a stand-in for vigild: the
// test owns the socket's other end and the heartbeat file, and speaks the
// protocol through lib/protocol, as vigild does.
//
// VIGIL_TEST_PYTHON picks the interpreter (default: python3 on PATH).

import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import type { Socket } from "node:net";
import os from "node:os";
import path from "node:path";
import {
  EXIT_SUPERVISOR_GONE,
  HEARTBEAT_SLOT_BYTES,
  LineDecoder,
  encodeShutdown,
  parseWorkerMessage,
  type ShutdownMessage,
  type WorkerMessage,
} from "../../../lib/protocol/index.js";
import { REPO } from "../../helpers/repo.js";

const ROOT = REPO;
const FIXTURES = path.join(ROOT, "test", "fixtures", "workers");
const PYTHON_LIB = path.join(ROOT, "lib", "python");
const PYTHON = process.env.VIGIL_TEST_PYTHON || "python3";
const SLOT = 1;
const SLOTS = 4;
const INTERVAL_MS = 100;
const PKG_VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version;

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const msSince = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

/** process.env without anything vigil set for the test runner itself. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("VIGIL_")));
}

class HeartbeatFile {
  readonly path = path.join(os.tmpdir(), `vigil-py-test-${process.pid}-${Math.random().toString(36).slice(2)}.hb`);
  readonly fd: number;

  constructor() {
    this.fd = fs.openSync(this.path, "w+");
    fs.ftruncateSync(this.fd, SLOTS * HEARTBEAT_SLOT_BYTES);
  }

  read(slot: number): bigint {
    const buf = Buffer.alloc(HEARTBEAT_SLOT_BYTES);
    fs.readSync(this.fd, buf, 0, HEARTBEAT_SLOT_BYTES, slot * HEARTBEAT_SLOT_BYTES);
    return buf.readBigUInt64LE(0);
  }

  close(): void {
    fs.closeSync(this.fd);
    fs.rmSync(this.path, { force: true });
  }
}

type Received = { message: WorkerMessage; at: bigint };
type Exit = { code: number | null; signal: NodeJS.Signals | null; at: bigint };
type Check<T> = () => T | undefined | null | false;

const started: Worker[] = [];

class Worker {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly socket: Socket | null = null;
  readonly hb: HeartbeatFile | null = null;
  readonly received: Received[] = [];
  readonly protocolErrors: string[] = [];
  readonly otherPids: number[] = [];
  stdout = "";
  stderr = "";
  exit: Exit | null = null;
  closed = false;
  socketEnded = false;
  private readonly waiters = new Set<() => void>();

  constructor(argv: string[], opts: { protocol: boolean; env?: NodeJS.ProcessEnv }) {
    let env = { ...cleanEnv(), ...opts.env };
    if (opts.protocol) {
      this.hb = new HeartbeatFile();
      env = {
        ...env,
        VIGIL_FD: "3",
        VIGIL_HEARTBEAT_FD: "4",
        VIGIL_HEARTBEAT_SLOT: String(SLOT),
        VIGIL_HEARTBEAT_INTERVAL_MS: String(INTERVAL_MS),
        VIGIL_PROGRAM: "t",
        VIGIL_WORKER: "0",
        VIGIL_TEARDOWN: "destroy",
      };
    }
    const stdio = this.hb ? ["ignore", "pipe", "pipe", "pipe", this.hb.fd] : ["ignore", "pipe", "pipe"];
    this.child = spawn(PYTHON, argv, { stdio: stdio as ("ignore" | "pipe" | number)[], detached: true, env });
    started.push(this);
    if (this.child.pid === undefined) throw new Error(`cannot spawn ${PYTHON}`);
    this.pid = this.child.pid;
    this.child.stdout!.setEncoding("utf8").on("data", (text: string) => {
      this.stdout += text;
      this.notify();
    });
    this.child.stderr!.setEncoding("utf8").on("data", (text: string) => {
      this.stderr += text;
      this.notify();
    });
    this.child.on("exit", (code, signal) => {
      this.exit = { code, signal, at: process.hrtime.bigint() };
      this.notify();
    });
    this.child.on("close", () => {
      this.closed = true;
      this.notify();
    });
    if (this.hb) {
      const socket = this.child.stdio[3] as Socket;
      this.socket = socket;
      const decoder = new LineDecoder();
      socket.on("data", (chunk: Buffer) => {
        for (const item of decoder.push(chunk)) {
          if (item.kind === "oversized") {
            this.protocolErrors.push(`oversized line of ${item.bytes} bytes`);
            continue;
          }
          const parsed = parseWorkerMessage(item.line);
          if (parsed.ok) this.received.push({ message: parsed.message, at: process.hrtime.bigint() });
          else this.protocolErrors.push(parsed.error);
        }
        this.notify();
      });
      socket.on("end", () => {
        this.socketEnded = true;
        this.notify();
      });
      socket.on("error", () => {}); // EPIPE/ECONNRESET once the worker is gone
    }
  }

  get messages(): WorkerMessage[] {
    return this.received.map((r) => r.message);
  }

  private notify(): void {
    for (const attempt of [...this.waiters]) attempt();
  }

  /** Resolves with check()'s first truthy value, re-checked whenever the worker says or does anything. */
  waitFor<T>(what: string, check: Check<T>, timeoutMs = 5000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const attempt = () => {
        const value = check();
        if (value === undefined || value === null || value === false) return;
        cleanup();
        resolve(value);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.describe()}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(attempt);
      };
      this.waiters.add(attempt);
      attempt();
    });
  }

  message<K extends WorkerMessage["type"]>(type: K, timeoutMs = 5000): Promise<Received & { message: Extract<WorkerMessage, { type: K }> }> {
    return this.waitFor(`a "${type}" message`, () => this.received.find((r) => r.message.type === type), timeoutMs) as Promise<
      Received & { message: Extract<WorkerMessage, { type: K }> }
    >;
  }

  stdoutMatch(re: RegExp, timeoutMs = 5000): Promise<RegExpExecArray> {
    return this.waitFor(`stdout to match ${re}`, () => re.exec(this.stdout), timeoutMs);
  }

  stderrMatch(re: RegExp, timeoutMs = 5000): Promise<RegExpExecArray> {
    return this.waitFor(`stderr to match ${re}`, () => re.exec(this.stderr), timeoutMs);
  }

  exited(timeoutMs = 5000): Promise<Exit> {
    return this.waitFor("the worker to exit", () => this.exit, timeoutMs);
  }

  /** Exited and all its output read. */
  async finished(timeoutMs = 5000): Promise<Exit> {
    await this.waitFor("the worker's output to close", () => this.closed, timeoutMs);
    return this.exit!;
  }

  shutdown(fields: Partial<Omit<ShutdownMessage, "type">> = {}): bigint {
    this.socket!.write(
      encodeShutdown({ reason: "stop", teardown: "destroy", handlersTimeoutMs: 2000, deadlineMs: 5000, ...fields }),
    );
    return process.hrtime.bigint();
  }

  heartbeat(): bigint {
    return this.hb!.read(SLOT);
  }

  /** Polls the heartbeat slot (it changes without telling anyone). */
  async nextHeartbeat(after: bigint, timeoutMs = 10 * INTERVAL_MS): Promise<bigint> {
    const start = process.hrtime.bigint();
    for (;;) {
      const value = this.heartbeat();
      if (value > after) return value;
      if (msSince(start) > timeoutMs) throw new Error(`heartbeat stuck at ${after} for ${timeoutMs} ms\n${this.describe()}`);
      await delay(5);
    }
  }

  describe(): string {
    return [
      `pid ${this.pid}, exit ${JSON.stringify(this.exit && { code: this.exit.code, signal: this.exit.signal })}`,
      `messages ${JSON.stringify(this.messages)}`,
      `protocol errors ${JSON.stringify(this.protocolErrors)}`,
      `stdout: ${this.stdout}`,
      `stderr: ${this.stderr}`,
    ].join("\n");
  }

  alive(): boolean {
    return this.exit === null;
  }

  async dispose(): Promise<void> {
    for (const pid of [-this.pid, ...this.otherPids]) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    this.socket?.destroy();
    if (this.exit === null) await this.exited(2000).catch(() => undefined);
    this.hb?.close();
  }
}

function start(fixture: string, ...args: string[]): Worker {
  return new Worker([path.join(FIXTURES, fixture), ...args], { protocol: true });
}

function threadHeaders(dump: string): number {
  return dump.match(/^(?:Current thread|Thread) 0x[0-9a-f]+/gm)?.length ?? 0;
}

describe(`Python client lib/python/vigil.py (${PYTHON})`, function () {
  this.timeout(15000);

  afterEach(async () => {
    await Promise.all(started.splice(0).map((worker) => worker.dispose()));
  });

  it("says hello, then ready, and writes CLOCK_MONOTONIC heartbeats into its slot only", async () => {
    const w = start("py_ok.py");
    await w.stdoutMatch(/^fixture py_ok pid=(\d+)$/m);
    await w.message("ready");
    expect(w.messages.slice(0, 2)).to.deep.equal([
      { type: "hello", client: "python", version: PKG_VERSION },
      { type: "ready" },
    ]);
    const first = w.heartbeat();
    expect(first > 0n, "a heartbeat is written at attach").to.equal(true);

    // The worker's own timestamps: 4 intervals apart after 4 beats.
    let beat = first;
    const beats: bigint[] = [];
    while (beats.length < 5) beats.push((beat = await w.nextHeartbeat(beat)));
    const lagMs = msSince(beats[4]!);
    expect(lagMs, "slot is CLOCK_MONOTONIC ns, same clock as hrtime").to.be.within(0, 3 * INTERVAL_MS);
    expect(Number(beats[4]! - beats[0]!) / 1e6).to.be.within(3.5 * INTERVAL_MS, 7 * INTERVAL_MS);

    for (const other of [0, 2, 3]) expect(w.hb!.read(other), `slot ${other}`).to.equal(0n);
    expect(w.protocolErrors).to.deep.equal([]);
    expect(w.stderr).to.equal("");
  });

  it("sends status text", async () => {
    const w = start("py_ok.py", "--status", "serving on :8000");
    const status = await w.message("status");
    expect(status.message).to.deep.equal({ type: "status", text: "serving on :8000" });
  });

  it("prints every thread's stack on SIGUSR2 and lives on", async () => {
    const w = start("py_ok.py");
    await w.message("ready");
    process.kill(w.pid, "SIGUSR2");
    await w.waitFor("a dump naming the main, heartbeat and reader threads", () =>
      threadHeaders(w.stderr) >= 3 &&
      /in <module>/.test(w.stderr) &&
      /in _heartbeat_loop/.test(w.stderr) &&
      /in _reader_loop/.test(w.stderr),
    );
    const after = w.heartbeat();
    await w.nextHeartbeat(after);
    expect(w.alive()).to.equal(true);
  });

  it("destroy: runs the handler, reports, tears down normally with atexit, exits 0", async () => {
    const w = start("py_ok.py", "--handler");
    await w.message("ready");
    w.shutdown({ reason: "restart", teardown: "destroy", deadlineMs: 5000 });
    const exit = await w.finished();
    expect(exit.code, w.describe()).to.equal(0);
    const ran = /^handler ran event=process_stopping reason=restart teardown=destroy deadline=(\S+)$/m.exec(w.stdout);
    expect(ran, w.stdout).to.not.equal(null);
    expect(Number(ran![1])).to.be.within(4, 5);
    expect(w.stdout.indexOf("atexit ran")).to.be.greaterThan(ran!.index);
    expect(w.messages.slice(2)).to.deep.equal([{ type: "handlers-done", timedOut: false }, { type: "teardown" }]);
  });

  it("a handler that raises is reported with its traceback and does not stop the next one", async () => {
    const w = start("py_ok.py", "--raise", "--handler");
    await w.message("ready");
    w.shutdown({ teardown: "destroy" });
    const exit = await w.finished();
    expect(exit.code, w.describe()).to.equal(0);
    expect(w.stderr).to.match(/^vigil: shutdown handler <function explode at 0x[0-9a-f]+> failed:\nTraceback/m);
    expect(w.stderr).to.match(/^RuntimeError: boom$/m);
    expect(w.stdout).to.match(/^handler ran event=process_stopping reason=stop /m);
    expect(w.messages.slice(2)).to.deep.equal([{ type: "handlers-done", timedOut: false }, { type: "teardown" }]);
  });

  it("destroy (mod_wsgi case): a handler that stops the non-daemon thread lets teardown finish", async () => {
    const w = start("py_teardown_hang.py", "--handler");
    await w.message("ready");
    w.shutdown({ reason: "stop", teardown: "destroy" });
    const exit = await w.finished();
    expect(exit.code, w.describe()).to.equal(0);
    expect(w.stdout).to.match(/handler ran reason=stop\nspinner stopped\natexit ran\n$/);
    expect(w.messages.slice(2)).to.deep.equal([{ type: "handlers-done", timedOut: false }, { type: "teardown" }]);
  });

  it("destroy without a handler: the main thread leaves, teardown hangs on the non-daemon thread", async () => {
    const w = start("py_teardown_hang.py");
    await w.message("ready");
    w.shutdown({ teardown: "destroy" });
    await w.message("teardown");
    expect(w.messages.slice(2)).to.deep.equal([{ type: "handlers-done", timedOut: false }, { type: "teardown" }]);
    await delay(1000); // proving an absence: nothing to wait for
    expect(w.alive(), w.describe()).to.equal(true);
    expect(w.stdout).to.not.include("atexit ran");
    // What vigild's stack dump of this hang shows: the spinner, and no main
    // thread running the script any more.
    process.kill(w.pid, "SIGUSR2");
    await w.stderrMatch(/in spin\n/);
    expect(w.stderr).to.not.match(/in <module>/);
  });

  it("skip: reports handlers-done and leaves at once, without teardown or atexit", async () => {
    const w = start("py_teardown_hang.py");
    await w.message("ready");
    const sent = w.shutdown({ teardown: "skip" });
    const exit = await w.exited();
    expect(Number(exit.at - sent) / 1e6).to.be.below(300);
    expect(exit.code).to.equal(0);
    await w.finished();
    expect(w.messages.slice(2)).to.deep.equal([{ type: "handlers-done", timedOut: false }]);
    expect(w.stdout).to.not.include("atexit ran");
  });

  it("gives up on handlers at handlers_timeout_ms, then tears down without them", async () => {
    const w = start("py_handler_sleep.py", "30");
    await w.message("ready");
    const sent = w.shutdown({ reason: "recycle", teardown: "destroy", handlersTimeoutMs: 400 });
    const done = await w.message("handlers-done");
    expect(done.message).to.deep.equal({ type: "handlers-done", timedOut: true });
    expect(Number(done.at - sent) / 1e6).to.be.within(380, 700);
    await w.message("teardown");
    const exit = await w.finished();
    expect(exit.code, w.describe()).to.equal(0);
    expect(w.stdout).to.include("handler sleeping 30 reason=recycle");
    expect(w.stdout).to.not.include("handler woke");
  });

  it("exits 70 when the supervisor's end of the socket closes", async () => {
    const w = start("py_ok.py");
    await w.message("ready");
    const start_ = process.hrtime.bigint();
    w.socket!.destroy();
    const exit = await w.exited(2000);
    expect(Number(exit.at - start_) / 1e6).to.be.below(1000);
    expect(exit.code).to.equal(EXIT_SUPERVISOR_GONE);
    await w.finished();
    expect(w.stderr).to.equal("vigil: supervisor gone, exiting\n");
  });

  it("stops heartbeating while C code holds the GIL, and can still dump stacks", async () => {
    const w = start("py_stop_heartbeat.py", "--after", "0.3");
    await w.message("ready");
    await w.nextHeartbeat(w.heartbeat());
    await w.stdoutMatch(/^holding GIL$/m);
    await delay(2 * INTERVAL_MS); // let a beat already under way land
    const stuck = w.heartbeat();
    await delay(6 * INTERVAL_MS);
    expect(w.heartbeat(), "heartbeat after 6 intervals").to.equal(stuck);
    expect(w.alive()).to.equal(true);
    process.kill(w.pid, "SIGUSR2");
    await w.waitFor("a dump with the main thread in hold_gil", () =>
      threadHeaders(w.stderr) >= 3 && /in hold_gil/.test(w.stderr) && /in _reader_loop/.test(w.stderr),
    );
  });

  it("survives its own garbage on the socket (py_garbage) and keeps working", async () => {
    const w = start("py_garbage.py");
    await w.stdoutMatch(/^garbage sent$/m);
    await w.waitFor("the status after the garbage", () =>
      w.messages.find((m) => m.type === "status" && m.text === "after garbage"),
    );
    expect(w.protocolErrors).to.have.length(7);
    expect(w.protocolErrors.filter((e) => e.startsWith("oversized"))).to.have.length(1);
    expect(w.messages).to.deep.equal([
      { type: "hello", client: "python", version: PKG_VERSION },
      { type: "ready" },
      { type: "status", text: "bad UTF-8 \ufffd\ufffd inside" },
      { type: "status", text: "after garbage" },
    ]);
    await w.nextHeartbeat(w.heartbeat());
    w.shutdown({ teardown: "skip" });
    expect((await w.exited()).code).to.equal(0);
  });

  it("forks a `sleep` child into its process group (py_fork_child)", async () => {
    const w = start("py_fork_child.py");
    const child = Number((await w.stdoutMatch(/^child pid=(\d+)$/m))[1]);
    w.otherPids.push(child);
    await w.message("ready");
    expect(() => process.kill(child, 0)).to.not.throw();
  });

  it("detaches an os.fork() child: it sends nothing and does not hold the socket", async () => {
    const w = start("py_fork_child.py", "--python");
    const child = Number((await w.stdoutMatch(/^child pid=(\d+)$/m))[1]);
    w.otherPids.push(child);
    await w.stdoutMatch(/^child attached=False$/m);
    await w.message("ready");
    process.kill(w.pid, "SIGKILL"); // the worker only: its forked child lives on
    await w.waitFor("end of file on the socket", () => w.socketEnded);
    expect(() => process.kill(child, 0)).to.not.throw();
    expect(w.messages.map((m) => m.type)).to.deep.equal(["hello", "ready"]);
  });

  it("does not leak its descriptors or their variables to children", async () => {
    const code = [
      "import os, sys",
      `sys.path.insert(0, ${JSON.stringify(PYTHON_LIB)})`,
      "import vigil",
      "print(vigil.attached, vigil.program, vigil.worker)",
      "print(sorted(k for k in os.environ if k.startswith('VIGIL_')))",
      "print(os.get_inheritable(3), os.get_inheritable(4))",
      "vigil.ready()",
    ].join("\n");
    const w = new Worker(["-c", code], { protocol: true });
    await w.message("ready");
    await w.stdoutMatch(/\n.*\n.*\n/);
    expect(w.stdout).to.equal("True t 0\n['VIGIL_PROGRAM', 'VIGIL_TEARDOWN', 'VIGIL_WORKER']\nFalse False\n");
  });

  it("is a silent no-op outside vigil", async () => {
    const code = [
      "import sys",
      `sys.path.insert(0, ${JSON.stringify(PYTHON_LIB)})`,
      "import vigil",
      "vigil.ready()",
      "vigil.status('x')",
      "vigil.subscribe_shutdown(lambda event, **kwargs: None)",
      "print(vigil.attached, vigil.program, vigil.worker)",
    ].join("\n");
    const plain = new Worker(["-c", code], { protocol: false });
    const off = new Worker(["-c", code], { protocol: false, env: { VIGIL_PROGRAM: "web", VIGIL_WORKER: "2" } });
    const notSocket = new Worker(["-c", code], { protocol: false, env: { VIGIL_FD: "9" } });
    for (const w of [plain, off, notSocket]) expect((await w.finished()).code, w.describe()).to.equal(0);
    expect(plain.stdout).to.equal("False None None\n");
    expect(plain.stderr).to.equal("");
    expect(off.stdout).to.equal("False web 2\n");
    expect(off.stderr).to.equal("");
    expect(notSocket.stdout).to.equal("False None None\n");
    expect(notSocket.stderr).to.equal("vigil: VIGIL_FD=9 is not an open socket, running unsupervised\n");
  });

  it("a SIGTERM from outside kills the worker by the signal, even when the application catches SystemExit", async () => {
    const w = start("py_ok.py", "--swallow-exit", "--handler");
    await w.message("ready");
    process.kill(w.pid, "SIGTERM");
    const exit = await w.finished();
    expect(exit, w.describe()).to.include({ code: null, signal: "SIGTERM" });
    expect(w.stdout).to.not.include("SystemExit swallowed");
    expect(w.stdout).to.not.include("handler ran");
    expect(w.messages.map((m) => m.type)).to.deep.equal(["hello", "ready"]);
  });

  it("while vigild does not read, status() never blocks; the stall is said once and the latest status arrives later", async () => {
    const w = start("py_ok.py", "--spam", "3000");
    w.socket!.pause(); // vigild stops reading: the socket's buffer (some 200 KiB) fills with the 3 MB of statuses
    const done = await w.stdoutMatch(/^spam done in (\S+) s$/m, 5000);
    expect(Number(done[1]), "seconds for 3000 status() calls").to.be.below(3);
    await w.stderrMatch(/^vigil: vigild has not read its socket for 1 s; messages wait in memory \(only the latest status is kept\)$/m);
    w.socket!.resume();
    await w.waitFor("the last status", () => w.messages.find((m) => m.type === "status" && m.text.startsWith("spam 2999 ")));
    const statuses = w.messages.filter((m) => m.type === "status");
    expect(statuses.length, "statuses received (the waiting ones were replaced)").to.be.below(3000);
    expect(w.messages.slice(0, 2).map((m) => m.type)).to.deep.equal(["hello", "ready"]);
    expect(w.protocolErrors).to.deep.equal([]);
    // It still works, and said it once.
    w.shutdown({ teardown: "skip" });
    expect((await w.exited()).code).to.equal(0);
    await w.finished();
    expect(w.stderr.match(/^vigil: /gm)).to.have.length(1);
  });

  it("ready() is sent once however often it is called", async () => {
    const code = [
      "import sys",
      `sys.path.insert(0, ${JSON.stringify(PYTHON_LIB)})`,
      "import vigil",
      "vigil.ready()",
      "vigil.ready()",
      "vigil.status('after')",
      "vigil.ready()",
    ].join("\n");
    const w = new Worker(["-c", code], { protocol: true });
    expect((await w.finished()).code, w.describe()).to.equal(0);
    expect(w.messages).to.deep.equal([
      { type: "hello", client: "python", version: PKG_VERSION },
      { type: "ready" },
      { type: "status", text: "after" },
    ]);
  });

  it("falls back to interrupt_main() when the application has its own SIGTERM handler", async () => {
    const w = start("py_ok.py", "--own-sigterm", "--handler");
    await w.message("ready");
    w.shutdown({ teardown: "destroy" });
    await w.message("teardown");
    const exit = await w.finished();
    // KeyboardInterrupt in the main thread: a normal teardown (atexit runs),
    // then CPython ends the process with SIGINT, as it does for ^C.
    expect(exit.signal, w.describe()).to.equal("SIGINT");
    expect(w.stdout).to.include("atexit ran");
    expect(w.stdout).to.not.include("app SIGTERM handler ran");
    expect(w.stderr).to.include("KeyboardInterrupt");
  });
});
