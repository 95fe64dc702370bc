// Web workers behind one vigil socket: Debian's gunicorn takes its listening
// socket from LISTEN_FDS, and Debian's wrk, opening a new connection per
// request, counts every request that met no accepting worker. Every replacement
// of a worker (rolling restart, reload up and down, recycle) must lose none.
import { expect } from "chai";
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, Vigild, isAlive, stopAll, type LogEntry } from "../../helpers/vigild.js";
import { expectNoLoss, wrk } from "../../helpers/wrk.js";
import { freePort, listenersOn } from "../../helpers/net.js";

const APP_DIR = join(REPO, "test/fixtures/web");
const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);


export function gunicorn(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    command: ["gunicorn", "--chdir", APP_DIR, "--workers", "1", "--threads", "4", "--graceful-timeout", "5", "app:app"],
    sockets: ["http"],
    shutdown: { signal: "SIGTERM", timeout: "10s", handlers_timeout: "5s" },
    ...extra,
  };
}

async function get(url: string): Promise<string> {
  const res = await fetch(url, { headers: { connection: "close" } });
  expect(res.status).to.equal(200);
  return res.text();
}

/** Waits until `n` different pids have answered on `url` (the gunicorns have booted). */
async function answeringPids(url: string, n: number, timeoutMs = 20_000): Promise<Set<number>> {
  const pids = new Set<number>();
  const until = Date.now() + timeoutMs;
  while (pids.size < n && Date.now() < until) {
    try {
      pids.add(Number(/pid=(\d+)/.exec(await get(url))![1]));
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return pids;
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}



describe("sockets: gunicorn workers behind one vigil socket, under wrk", function () {
  this.timeout(90_000);
  afterEach(stopAll);

  async function start(instances: number, extra: Record<string, unknown> = {}): Promise<{ v: Vigild; url: string; port: number }> {
    const port = await freePort();
    const v = new Vigild({
      sockets: { http: { listen: `127.0.0.1:${port}`, backlog: 512 } },
      programs: { web: gunicorn({ instances, ...extra }) },
    });
    await v.waitFor(isMsg(/^all \d+ workers ready/), 15_000);
    const url = `http://127.0.0.1:${port}/`;
    expect((await answeringPids(url, instances)).size).to.equal(instances);
    return { v, url, port };
  }

  it("three instances answer on one port that only vigild bound, each answer from one of them", async () => {
    const { v, url, port } = await start(3);
    const pids = await answeringPids(url, 3);
    // gunicorn serves from a worker process forked by its master, which is vigild's worker.
    const masters = [...pids].map(parentOf);
    for (const master of masters) expect(v.workerPids.has(master), `master ${master} of a serving process`).to.equal(true);
    expect(new Set(masters).size).to.equal(3);
    expect(listenersOn(port), "gunicorn bound no socket of its own").to.equal(1);
    expect(v.logs.some(isMsg(new RegExp(`^socket http listening on 127\\.0\\.0\\.1:${port}`)))).to.equal(true);
    expect(await v.metric("vigil_socket_connections_queued", { socket: "http" })).to.equal(0);
  });

  it("a reload replaces every instance one at a time and loses no request", async () => {
    const { v, url } = await start(3);
    const load = wrk(url, 8);
    await new Promise((r) => setTimeout(r, 1500));
    const config = v.configPath;
    const text = readFileSync(config, "utf8");
    writeFileSync(config, text.replace(/programs:\n {2}web:\n/, "programs:\n  web:\n    env: { APP_GENERATION: \"2\" }\n"));
    v.signal("SIGHUP");
    await v.waitFor(isMsg(/^reload done: changed web/), 30_000);
    expectNoLoss(await load, "reload");
    expect(v.logs.filter(isMsg(/^web\/\d\[\d+\] spawned/)).length).to.equal(6);
  });

  it("a reload from 3 instances to 2 and back to 3 loses no request", async () => {
    const { v, url } = await start(3);
    const load = wrk(url, 9);
    await new Promise((r) => setTimeout(r, 1000));
    const base = readFileSync(v.configPath, "utf8");
    writeFileSync(v.configPath, base.replace("instances: 3", "instances: 2"));
    v.signal("SIGHUP");
    await v.waitFor(isMsg(/^reload done/), 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    writeFileSync(v.configPath, base);
    v.signal("SIGHUP");
    await v.waitForCount(isMsg(/^reload done/), 2, 30_000);
    expectNoLoss(await load, "reload 3 -> 2 -> 3");
    expect((await answeringPids(url, 3)).size).to.equal(3);
  });

  it("recycling by max_age replaces the workers one at a time and loses no request", async () => {
    const { v, url } = await start(3, { recycle: { max_age: "3s" } });
    const result = await wrk(url, 8);
    expectNoLoss(result, "recycle");
    expect(v.logs.filter(isMsg(/recycling: max_age 3s reached/)).length).to.be.at.least(3);
  });

  it("with instances: 1, a reload keeps connections waiting in the queue instead of refusing them", async () => {
    const { v, url } = await start(1);
    const load = wrk(url, 6, 2);
    await new Promise((r) => setTimeout(r, 1000));
    writeFileSync(v.configPath, readFileSync(v.configPath, "utf8").replace(/programs:\n {2}web:\n/, "programs:\n  web:\n    env: { G: \"2\" }\n"));
    v.signal("SIGHUP");
    await v.waitFor(isMsg(/^reload done/), 30_000);
    expectNoLoss(await load, "reload of a single instance");
  });

  it("with instances: 1, a crashed worker loses at most what it had accepted; nothing is refused", async () => {
    const { v, url } = await start(1);
    const load = wrk(url, 6, 2);
    await new Promise((r) => setTimeout(r, 1000));
    const [pid] = v.workerPids;
    // A crash: no replacement is started before the old worker is gone.
    process.kill(-pid!, "SIGKILL");
    await v.waitFor(isMsg(/^web\/0\[\d+\] restarting in/), 10_000);
    const result = await load;
    // The killed worker loses at most what it had accepted; nothing is refused while none accepts.
    expect(result.output).to.not.match(/connect [1-9]/);
    expect(result.socketErrors, result.output).to.be.at.most(2 * 4);
    expect(result.non2xx).to.equal(0);
    expect(isAlive(pid!)).to.equal(false);
  });

  it("a unix-socket listener serves through gunicorn and survives a rolling reload", async () => {
    const dir = execFileSync("mktemp", ["-d"], { encoding: "utf8" }).trim();
    const path = join(dir, "web.sock");
    const v = new Vigild({ sockets: { http: { listen: path } }, programs: { web: gunicorn({ instances: 2 }) } });
    await v.waitFor(isMsg(/^all 2 workers ready/), 15_000);
    const curl = async (): Promise<string> =>
      (await promisify(execFile)("curl", ["-sS", "--max-time", "5", "--unix-socket", path, "http://x/"], { encoding: "utf8" })).stdout;
    const until = Date.now() + 15_000;
    let first = "";
    while (!first && Date.now() < until) {
      try {
        first = await curl();
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(first).to.match(/^pid=\d+/);
    writeFileSync(v.configPath, readFileSync(v.configPath, "utf8").replace(/programs:\n {2}web:\n/, "programs:\n  web:\n    env: { G: \"2\" }\n"));
    v.signal("SIGHUP");
    let served = 0;
    while (!v.logs.some(isMsg(/^reload done/))) {
      expect(await curl()).to.match(/^pid=\d+/);
      served++;
    }
    expect(served).to.be.above(5);
    await v.waitFor(isMsg(/^reload done: changed web/), 1000);
    expect(v.logs.filter(isMsg(/^web\/\d\[\d+\] spawned/)).length).to.equal(4);
    // gunicorn must not unlink a path it did not create: the socket is still there for the next worker.
    expect(await curl()).to.match(/^pid=\d+/);
  });
});
