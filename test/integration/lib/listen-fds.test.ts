// listen_sockets() (Python) and listenFds() (Node) against real listening
// sockets handed over by sd_listen_fds(3)'s rules: test/fixtures/workers/
// listen_exec.py binds them, puts them on fds 3, 4, ..., sets LISTEN_* and
// execs the worker (so LISTEN_PID is the worker's pid). With a protocol
// socket, this test plays vigild on it, moved up to VIGIL_FD=3+N.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type net from "node:net";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { HEARTBEAT_SLOT_BYTES, LineDecoder, encodeShutdown, parseWorkerMessage, type WorkerMessage } from "../../../lib/protocol/index.js";
import { parseListenEnv } from "../../../lib/node/listen.js";
import { REPO } from "../../helpers/repo.js";

const repoRoot = REPO;
const fixtures = path.join(repoRoot, "test", "fixtures", "workers");
const PYTHON = process.env.VIGIL_TEST_PYTHON || "python3";

interface Launch {
  tcp?: string[];
  unix?: string[];
  vigil?: boolean;
  vigilAt?: number;
  fdnames?: string;
  noFdnames?: boolean;
  pidOffset?: number;
  args?: string[];
}

/** One launched worker: its output lines and, with a protocol socket, its messages. */
class Launched {
  readonly child: ChildProcess;
  readonly messages: WorkerMessage[] = [];
  readonly socket: net.Socket | undefined;
  readonly hbPath = path.join(os.tmpdir(), `vigil-listen-${process.pid}-${randomBytes(4).toString("hex")}.hb`);
  stdout = "";
  stderr = "";
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(worker: string[], opts: Launch) {
    const argv = [path.join(fixtures, "listen_exec.py")];
    for (const name of opts.tcp ?? []) argv.push("--tcp", name);
    for (const spec of opts.unix ?? []) argv.push("--unix", spec);
    if (opts.vigil) argv.push("--vigil");
    if (opts.vigilAt !== undefined) argv.push("--vigil-at", String(opts.vigilAt));
    if (opts.fdnames !== undefined) argv.push("--fdnames", opts.fdnames);
    if (opts.noFdnames) argv.push("--no-fdnames");
    if (opts.pidOffset !== undefined) argv.push("--pid-offset", String(opts.pidOffset));
    argv.push("--", ...worker, ...(opts.args ?? []));
    const env: NodeJS.ProcessEnv = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith("VIGIL_") && !k.startsWith("LISTEN_")),
    );
    const stdio: ("ignore" | "pipe" | number)[] = ["ignore", "pipe", "pipe"];
    let hbFd: number | undefined;
    if (opts.vigil) {
      hbFd = fs.openSync(this.hbPath, "w+");
      fs.ftruncateSync(hbFd, 4 * HEARTBEAT_SLOT_BYTES);
      Object.assign(env, { VIGIL_HEARTBEAT_SLOT: "0", VIGIL_HEARTBEAT_INTERVAL_MS: "100", VIGIL_PROGRAM: "web", VIGIL_WORKER: "0" });
      stdio.push("pipe", hbFd);
    }
    this.child = spawn(PYTHON, argv, { stdio, env, detached: true });
    if (hbFd !== undefined) fs.closeSync(hbFd);
    this.child.stdout!.setEncoding("utf8").on("data", (text: string) => this.add(() => (this.stdout += text)));
    this.child.stderr!.setEncoding("utf8").on("data", (text: string) => this.add(() => (this.stderr += text)));
    this.child.on("exit", (code, signal) => this.add(() => (this.exit = { code, signal })));
    this.socket = opts.vigil ? (this.child.stdio[3] as net.Socket) : undefined;
    const decoder = new LineDecoder();
    this.socket?.on("error", () => {});
    this.socket?.on("data", (chunk: Buffer) =>
      this.add(() => {
        for (const item of decoder.push(chunk)) {
          const parsed = item.kind === "line" ? parseWorkerMessage(item.line) : undefined;
          if (parsed?.ok) this.messages.push(parsed.message);
        }
      }),
    );
  }

  private add(change: () => unknown): void {
    change();
    for (const waiter of [...this.waiters]) waiter();
  }

  waitFor<T>(what: string, check: () => T | undefined, timeoutMs = 8000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const attempt = (): void => {
        const value = check();
        if (value === undefined) return;
        done();
        resolve(value);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${what}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}\nmessages: ${JSON.stringify(this.messages)}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(attempt);
      };
      this.waiters.add(attempt);
      attempt();
    });
  }

  line(re: RegExp): Promise<RegExpExecArray> {
    return this.waitFor(`a line matching ${re}`, () => re.exec(this.stdout) ?? undefined);
  }

  message(type: WorkerMessage["type"]): Promise<WorkerMessage> {
    return this.waitFor(`a ${type} message`, () => this.messages.find((m) => m.type === type));
  }

  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.waitFor("the exit", () => this.exit);
  }

  async json<T>(label: string): Promise<T> {
    return JSON.parse((await this.line(new RegExp(`^${label} (.*)$`, "m")))[1]!) as T;
  }

  /** The descriptors the worker printed it was handed, fd -> target. */
  inherited(): Map<number, string> {
    return new Map([...this.stdout.matchAll(/^inherited fd=(\d+) target=(.*)$/gm)].map((m) => [Number(m[1]), m[2]!]));
  }

  /** The shell grandchild's descriptors above 2, fd -> target. */
  async grandchild(): Promise<{ fds: Map<number, string>; env: string }> {
    const env = (await this.line(/^grandchild env (.*)$/m))[1]!;
    const fds = new Map([...this.stdout.matchAll(/^grandchild fd (\d+) (.*)$/gm)].map((m) => [Number(m[1]), m[2]!]));
    return { fds, env };
  }

  kill(): void {
    try {
      process.kill(-this.child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
    this.socket?.destroy();
    fs.rmSync(this.hbPath, { force: true });
  }
}

function get(target: { port: number } | { socketPath: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ ...target, path: "/", agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (text: string) => (body += text));
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
  });
}

const WORKERS = [
  { lang: "Python", call: "listen_sockets()", argv: [PYTHON, path.join(fixtures, "py_listen.py")] },
  { lang: "Node", call: "listenFds()", argv: [process.execPath, path.join(fixtures, "node_listen.mjs")] },
] as const;

describe("listening sockets by sd_listen_fds(3)'s rules", function () {
  this.timeout(20000);
  let started: Launched[] = [];
  let tmp: string;

  function launch(argv: readonly string[], opts: Launch): Launched {
    const w = new Launched([...argv], opts);
    started.push(w);
    return w;
  }

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-listen-"));
  });

  afterEach(() => {
    for (const w of started) w.kill();
    started = [];
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  for (const { lang, call, argv } of WORKERS) {
    describe(`${lang} ${call}`, function () {
      it("serves HTTP on a TCP and a unix socket by name, attached to vigild on VIGIL_FD=3+N; nothing reaches a grandchild", async function () {
        const unixPath = path.join(tmp, "admin.sock");
        const w = launch(argv, { tcp: ["http"], unix: [`admin=${unixPath}`], vigil: true });
        const port = Number((await w.line(/^socket http tcp (\d+)$/m))[1]);
        await w.line(/^serving$/m);
        const pid = w.child.pid!;

        // What the worker was handed: the sockets on 3 and 4, vigild's behind them.
        const handed = w.inherited();
        expect([...handed.keys()]).to.deep.equal([3, 4, 5, 6]);
        expect(handed.get(5)).to.match(/^socket:/);
        expect(handed.get(6)).to.equal(w.hbPath);

        if (lang === "Python") {
          const sockets = await w.json<Record<string, Record<string, unknown>>>("sockets");
          expect(sockets).to.deep.equal({
            http: { fd: 3, family: "AF_INET", type: "SOCK_STREAM", blocking: true, inheritable: false, same: true },
            admin: { fd: 4, family: "AF_UNIX", type: "SOCK_STREAM", blocking: true, inheritable: false, same: true },
          });
        } else {
          expect(await w.json("fds")).to.deep.equal({ fds: { http: 3, admin: 4 }, same: true });
        }
        expect(await w.json("env"), "LISTEN_* left in the environment").to.deep.equal([]);

        const grandchild = await w.grandchild();
        expect(grandchild.env, "LISTEN_PID|LISTEN_FDS|LISTEN_FDNAMES|VIGIL_FD in the grandchild").to.equal("|||");
        const leaked = [...grandchild.fds].filter(([, target]) => [...handed.values()].includes(target));
        expect(leaked, `grandchild fds ${JSON.stringify([...grandchild.fds])}`).to.deep.equal([]);

        expect(await get({ port })).to.equal(`http ${pid}\n`);
        expect(await get({ socketPath: unixPath })).to.equal(`admin ${pid}\n`);

        await w.message("ready");
        expect(w.messages[0]).to.include({ type: "hello", client: lang.toLowerCase() });
        w.socket!.write(encodeShutdown({ reason: "stop", teardown: "destroy", handlersTimeoutMs: 2000, deadlineMs: 5000 }));
        expect(await w.exited()).to.deep.equal({ code: 0, signal: null });
        expect(w.messages.map((m) => m.type)).to.deep.equal(["hello", "ready", "handlers-done", "teardown"]);
        expect(w.stderr).to.equal("");
      });

      it("without vigild: systemd's default name, repeated names numbered, in fd order", async function () {
        const unnamed = launch(argv, { tcp: ["a", "b"], noFdnames: true });
        const named = launch(argv, { tcp: ["web", "web", "api", "web"] });
        await named.line(/^serving$/m);
        const keys = lang === "Python" ? Object.keys(await named.json("sockets")) : Object.keys((await named.json<{ fds: object }>("fds")).fds);
        expect(keys).to.deep.equal(["web", "web:2", "api", "web:3"]);
        const ports = [...named.stdout.matchAll(/^socket \S+ tcp (\d+)$/gm)].map((m) => Number(m[1]));
        expect(await get({ port: ports[1]! })).to.equal(`web:2 ${named.child.pid}\n`);
        expect(await get({ port: ports[3]! })).to.equal(`web:3 ${named.child.pid}\n`);

        await unnamed.line(/^serving$/m);
        const unnamedKeys =
          lang === "Python" ? Object.keys(await unnamed.json("sockets")) : Object.keys((await unnamed.json<{ fds: object }>("fds")).fds);
        expect(unnamedKeys).to.deep.equal(["unknown", "unknown:2"]);
        expect(unnamed.stderr + named.stderr).to.equal("");
      });

      it("LISTEN_PID of another process: no sockets, and the variables are gone all the same", async function () {
        const w = launch(argv, { tcp: ["http"], pidOffset: 1 });
        await w.line(/^serving$/m);
        if (lang === "Python") expect(await w.json("sockets")).to.deep.equal({});
        else expect(await w.json("fds")).to.deep.equal({ fds: {}, same: true });
        expect(await w.json("env")).to.deep.equal([]);
        expect((await w.grandchild()).env).to.equal("|||");
        expect(w.stderr).to.equal("");
      });

      it("LISTEN_FDNAMES that does not match LISTEN_FDS: no sockets, said on stderr", async function () {
        const w = launch(argv, { tcp: ["a", "b"], fdnames: "a" });
        await w.line(/^serving$/m);
        if (lang === "Python") expect(await w.json("sockets")).to.deep.equal({});
        else expect(await w.json("fds")).to.deep.equal({ fds: {}, same: true });
        expect(w.stderr).to.equal("vigil: LISTEN_FDNAMES has 1 names for LISTEN_FDS=2, ignoring the sockets\n");
      });
    });
  }

  it("Node: a protocol socket beyond a descriptor gap is said to leak to children (Node cannot mark it close-on-exec)", async function () {
    const w = launch(WORKERS[1].argv, { tcp: ["http"], vigil: true, vigilAt: 40 });
    await w.line(/^serving$/m);
    await w.message("ready");
    expect(w.stderr).to.equal(
      "vigil: fd 40 (VIGIL_FD), fd 41 (VIGIL_HEARTBEAT_FD) will stay open in child processes: Node marks inherited " +
        "descriptors close-on-exec only from 3 up to the first gap after 15, and cannot mark them later\n",
    );
    // The listening socket on 3 is covered, the two beyond the gap are not.
    const handed = w.inherited();
    const { fds } = await w.grandchild();
    expect([...fds.values()]).to.not.include(handed.get(3));
    expect([...fds.values()]).to.include(w.hbPath);
  });

  it("Python: a protocol socket beyond a descriptor gap is still closed on exec", async function () {
    const w = launch(WORKERS[0].argv, { tcp: ["http"], vigil: true, vigilAt: 40 });
    await w.line(/^serving$/m);
    await w.message("ready");
    const handed = w.inherited();
    const { fds } = await w.grandchild();
    expect([...fds.values()].filter((t) => [...handed.values()].includes(t))).to.deep.equal([]);
    expect(w.stderr).to.equal("");
  });

  it("Node: an unsubscribed shutdown handler is not called", async function () {
    const w = launch(WORKERS[1].argv, { tcp: ["http"], vigil: true, args: ["--unsubscribe"] });
    await w.line(/^serving$/m);
    await w.message("ready");
    w.socket!.write(encodeShutdown({ reason: "stop", teardown: "destroy", handlersTimeoutMs: 2000, deadlineMs: 5000 }));
    await w.line(/^second handler ran, servers left open$/m);
    await w.message("handlers-done");
    // The unsubscribed handler, subscribed first, would have printed before the second one.
    expect(w.stdout).to.not.include("servers closed");
  });
});

describe("parseListenEnv (sd_listen_fds_with_names rules)", function () {
  const PID = 4242;
  const cases: Array<[string, Record<string, string>, Record<string, number>, boolean]> = [
    ["nothing passed", {}, {}, false],
    ["another process's", { LISTEN_PID: "4243", LISTEN_FDS: "1" }, {}, false],
    ["no names: unknown", { LISTEN_PID: "4242", LISTEN_FDS: "2" }, { unknown: 3, "unknown:2": 4 }, false],
    ["empty names: unknown", { LISTEN_PID: "4242", LISTEN_FDS: "1", LISTEN_FDNAMES: "" }, { unknown: 3 }, false],
    ["named", { LISTEN_PID: "4242", LISTEN_FDS: "2", LISTEN_FDNAMES: "http:admin" }, { http: 3, admin: 4 }, false],
    ["zero", { LISTEN_PID: "4242", LISTEN_FDS: "0" }, {}, false],
    ["names do not match", { LISTEN_PID: "4242", LISTEN_FDS: "2", LISTEN_FDNAMES: "a:b:c" }, {}, true],
    ["not numbers", { LISTEN_PID: "me", LISTEN_FDS: "2" }, {}, true],
    ["a name like __proto__ is a plain key", { LISTEN_PID: "4242", LISTEN_FDS: "1", LISTEN_FDNAMES: "__proto__" }, JSON.parse('{"__proto__":3}') as Record<string, number>, false],
  ];
  for (const [title, env, fds, warns] of cases) {
    it(title, function () {
      const parsed = parseListenEnv(env, PID);
      expect(parsed.fds).to.deep.equal(fds);
      expect(Object.keys(parsed.fds)).to.deep.equal(Object.keys(fds));
      expect(parsed.warning !== undefined).to.equal(warns);
    });
  }
});
