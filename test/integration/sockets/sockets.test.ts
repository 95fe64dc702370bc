// The socket machinery on real sockets: binding and listening without
// accepting, the kernel's view through /proc, sockets from systemd by the
// rules of sd_listen_fds(3), a reload that keeps or closes them, and a port
// in use failing vigild's start with the socket's name, address and reason.
import { expect } from "chai";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SocketConfig } from "../../../daemon/config/types.js";
import { bindSockets, SocketError } from "../../../daemon/sockets/bind.js";
import { takeInheritedSockets } from "../../../daemon/sockets/inherited.js";
import { findSocket, scanTcp, scanUnix, socketInode } from "../../../daemon/sockets/procfs.js";
import { SocketSet } from "../../../daemon/sockets/set.js";
import { NotifyReceiver } from "../../helpers/notify.js";
import { freePort } from "../../helpers/net.js";
import { Vigild, stopAll, type LogEntry } from "../../helpers/vigild.js";

const tcp = (name: string, port: number, backlog = 128): SocketConfig => ({ name, listen: { kind: "tcp", host: "127.0.0.1", port }, backlog });
const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);

function kernel(fd: number) {
  const inode = socketInode(fd);
  expect(inode, `fd ${fd} is a socket`).to.not.equal(null);
  return findSocket(inode!);
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
}

describe("sockets", function () {
  this.timeout(30_000);

  describe("sd_listen_fds(3) rules for sockets systemd passed to vigild", () => {
    it("takes fds 3.. by name when LISTEN_PID is vigild's, and removes LISTEN_* from the environment", () => {
      const env: NodeJS.ProcessEnv = { LISTEN_PID: "42", LISTEN_FDS: "3", LISTEN_FDNAMES: "http:admin", PATH: "/bin" };
      const got = takeInheritedSockets(env, 42);
      expect([...got.byName]).to.deep.equal([
        ["http", 3],
        ["admin", 4],
        ["unknown", 5],
      ]);
      expect(got.ignored).to.equal(null);
      expect(env).to.deep.equal({ PATH: "/bin" });
    });

    it("ignores sockets meant for another process, and says why", () => {
      const env: NodeJS.ProcessEnv = { LISTEN_PID: "41", LISTEN_FDS: "1", LISTEN_FDNAMES: "http" };
      const got = takeInheritedSockets(env, 42);
      expect(got.byName.size).to.equal(0);
      expect(got.ignored).to.equal("LISTEN_PID=41 is not vigild's pid 42");
      expect(env).to.deep.equal({});
      expect(takeInheritedSockets({}, 42)).to.deep.equal({ byName: new Map(), ignored: null });
    });
  });

  describe("/proc/net", () => {
    it("reads a listening TCP socket's address, queue and backlog, and a unix socket's path", () => {
      const tcpTable = [
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
        "   0: 0100007F:1F90 00000000:0000 0A 00000400:00000007 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0",
      ].join("\n");
      expect(scanTcp(tcpTable, "4242")).to.deep.equal({
        address: { kind: "tcp", host: "127.0.0.1", port: 8080 },
        listening: true,
        queued: 7,
      });
      const v6 = "  sl  local\n   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000080:00000000 00:00000000 00000000     0        0 99 1";
      expect(scanTcp(v6, "99")?.address).to.deep.equal({ kind: "tcp", host: "::", port: 8080 });
      const unix = "Num       RefCount Protocol Flags    Type St Inode Path\n0000: 00000002 00000000 00010000 0001 01 555 /run/app.sock";
      expect(scanUnix(unix, "555")).to.deep.equal({ address: { kind: "unix", path: "/run/app.sock" }, listening: true, queued: null });
    });
  });

  describe("binding", () => {
    it("listens without accepting: connections wait in the queue, as the kernel reports", async () => {
      const port = await freePort();
      const [s] = bindSockets([tcp("http", port, 64)]);
      try {
        const client = await connect(port);
        const k = kernel(s!.fd);
        expect(k?.address).to.deep.equal({ kind: "tcp", host: "127.0.0.1", port });
        expect(k?.listening).to.equal(true);
        expect(k?.queued, "the connection waits: vigild accepted nothing").to.equal(1);
        client.destroy();
      } finally {
        s!.close();
      }
    });

    it("a port in use is a SocketError naming the socket, the address and the reason, and nothing stays open", async () => {
      const port = await freePort();
      const other = net.createServer().listen(port, "127.0.0.1");
      await new Promise((r) => other.once("listening", r));
      const free = await freePort();
      try {
        expect(() => bindSockets([tcp("ok", free), tcp("http", port)])).to.throw(
          SocketError,
          `socket http (127.0.0.1:${port}): cannot bind: address already in use (EADDRINUSE)`,
        );
        // "ok" was closed again: its port can be bound once more.
        const [again] = bindSockets([tcp("ok", free)]);
        again!.close();
      } finally {
        other.close();
      }
    });

    it("a unix socket path: a stale socket file is replaced, a regular file is an error, close removes the path", () => {
      const dir = mkdtempSync(join(tmpdir(), "vigil-sock-"));
      const path = join(dir, "app.sock");
      const config: SocketConfig = { name: "app", listen: { kind: "unix", path }, backlog: 16 };
      const [first] = bindSockets([config]);
      // A vigild that died without closing leaves the file: the next one binds anyway.
      const [second] = (() => {
        try {
          return bindSockets([config]);
        } finally {
          first!.close();
        }
      })();
      expect(kernel(second!.fd)?.address).to.deep.equal({ kind: "unix", path });
      second!.close();
      expect(() => readFileSync(path)).to.throw(/ENOENT/);
      writeFileSync(path, "not a socket");
      expect(() => bindSockets([config])).to.throw(SocketError, `socket app (${path}): cannot bind: ${path} exists and is not a socket`);
    });
  });

  describe("a reload of the socket set", () => {
    it("keeps a socket whose address stays (renamed or a new backlog), and closes a removed one only after its last worker", async () => {
      const [a, b] = [await freePort(), await freePort()];
      const set = new SocketSet();
      set.apply([tcp("http", a), tcp("admin", b)]);
      const lease = set.acquire(["http", "admin"]);
      const [httpFd, adminFd] = lease.fds;
      // Renamed, new backlog, "admin" gone.
      const change = set.apply([tcp("web", a, 256)]);
      expect(change.notes).to.include("socket admin removed; closing it when its 1 worker(s) have stopped");
      expect(set.acquire(["web"]).fds).to.deep.equal([httpFd]);
      expect(kernel(adminFd!)?.listening, "admin stays open for the worker that has it").to.equal(true);
      expect(() => set.acquire(["admin"])).to.throw(/no open socket named admin/);
      lease.release();
      expect(socketInode(adminFd!), "closed after its last worker").to.equal(null);
      set.close();
    });

    it("a socket that cannot be bound changes nothing", async () => {
      const [a, busy] = [await freePort(), await freePort()];
      const other = net.createServer().listen(busy, "127.0.0.1");
      await new Promise((r) => other.once("listening", r));
      const set = new SocketSet();
      try {
        set.apply([tcp("http", a)]);
        const fd = set.acquire(["http"]).fds[0];
        expect(() => set.apply([tcp("http", a), tcp("admin", busy)])).to.throw(SocketError);
        expect(set.acquire(["http"]).fds[0]).to.equal(fd);
        expect(() => set.acquire(["admin"])).to.throw();
      } finally {
        other.close();
        set.close();
      }
    });
  });

  describe("vigild", () => {
    afterEach(stopAll);

    it("fails its start when a socket cannot be bound: name, address and reason in STATUS= and the log", async () => {
      const port = await freePort();
      const other = net.createServer().listen(port, "127.0.0.1");
      await new Promise((r) => other.once("listening", r));
      const notify = await NotifyReceiver.start();
      try {
        const v = new Vigild(
          { sockets: { http: { listen: `127.0.0.1:${port}` } }, programs: { web: { command: ["sleep", "100"], sockets: ["http"] } } },
          { env: { NOTIFY_SOCKET: notify.path } },
        );
        const { code } = await v.waitExit();
        expect(code).to.equal(1);
        const why = `start failed: socket http (127.0.0.1:${port}): cannot bind: address already in use (EADDRINUSE)`;
        expect(v.logs.some((e) => e.msg === why && e.level === "error")).to.equal(true);
        expect(notify.messages.some((m) => m.STATUS === why)).to.equal(true);
        expect(v.workerPids.size, "no worker was started").to.equal(0);
      } finally {
        other.close();
        notify.close();
      }
    });

    it("hands a worker its sockets on fds 3.. with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID equal to its own pid, the protocol socket behind them", async () => {
      const [a, b] = [await freePort(), await freePort()];
      const code = [
        "import os, socket",
        "names = [socket.socket(fileno=fd).getsockname()[1] for fd in (3, 4)]",
        "print('env', os.environ['LISTEN_PID'] == str(os.getpid()), os.environ['LISTEN_FDS'], os.environ['LISTEN_FDNAMES'], os.environ['VIGIL_FD'], *names, flush=True)",
        "import time; time.sleep(100)",
      ].join("\n");
      const v = new Vigild(
        {
          sockets: { http: { listen: `127.0.0.1:${a}` }, admin: { listen: `127.0.0.1:${b}` } },
          programs: { web: { command: ["python3", "-c", code], sockets: ["admin", "http"] } },
        },
        // LISTEN_* meant for another process: vigild ignores them and passes nothing of them on.
        { env: { LISTEN_PID: "1", LISTEN_FDS: "1", LISTEN_FDNAMES: "stray" } },
      );
      const line = await v.waitFor(isMsg(/^env /), 10_000);
      expect(line.msg).to.equal(`env True 2 admin:http 5 ${b} ${a}`);
      expect(line.stream).to.equal("stdout");
      expect(v.logs.some(isMsg(/^ignoring sockets from systemd: LISTEN_PID=1 is not vigild's pid/))).to.equal(true);
    });

    it("a reload whose new socket cannot be bound keeps the running configuration and its workers", async () => {
      const [a, busy] = [await freePort(), await freePort()];
      const v = new Vigild({ sockets: { http: { listen: `127.0.0.1:${a}` } }, programs: { web: { command: ["sleep", "100"], sockets: ["http"] } } });
      await v.waitFor(isMsg(/^all 1 workers ready/));
      const other = net.createServer().listen(busy, "127.0.0.1");
      await new Promise((r) => other.once("listening", r));
      try {
        writeFileSync(
          v.configPath,
          readFileSync(v.configPath, "utf8")
            .replace(/sockets:\n {2}http:\n/, `sockets:\n  admin:\n    listen: 127.0.0.1:${busy}\n  http:\n`)
            .replace(/- http/, "- http\n      - admin"),
        );
        v.signal("SIGHUP");
        await v.waitFor(isMsg(/^reload failed; keeping the running configuration/));
        expect(v.logs.some(isMsg(new RegExp(`^reload: socket admin \\(127\\.0\\.0\\.1:${busy}\\): cannot bind: address already in use`)))).to.equal(true);
        expect(v.logs.filter(isMsg(/^web\/0\[\d+\] spawned/))).to.have.length(1);
        const client = await connect(a);
        client.destroy();
      } finally {
        other.close();
      }
    });
  });
});
