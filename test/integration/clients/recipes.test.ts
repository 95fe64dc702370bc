// The README's Python recipes, run as written with the frameworks from
// Debian's packages (python3-flask, python3-uvicorn) under a real vigild on
// a vigil socket, and the Python client's asyncio handlers. (The Node http
// recipe needs the packed client: it runs in packages.test.ts.)
import { expect } from "chai";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { freePort } from "../../helpers/net.js";
import { REPO, Vigild, stopAll, type LogEntry } from "../../helpers/vigild.js";

const isMsg = (re: RegExp) => (e: LogEntry) => re.test(e.msg);
const RECIPES = join(REPO, "examples/recipes");
const ASYNC_WORKER = join(REPO, "test/fixtures/clients/py_async.py");
// Debian's interpreter: the frameworks are its packages. The client comes
// from the source tree, as `make install` puts it on that interpreter's path.
const PYTHON = "/usr/bin/python3";
const ENV = { PYTHONPATH: join(REPO, "lib/python") };

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

function exitsOf(v: Vigild): LogEntry[] {
  return v.logs.filter((e) => typeof e.outcome === "string");
}

describe("recipes: Python frameworks from Debian under vigild", function () {
  this.timeout(90_000);
  afterEach(stopAll);

  it("Flask: served on the vigil socket; the handler stops the non-daemon thread, so the stop is clean and quick", async () => {
    const port = await freePort();
    const v = new Vigild({
      sockets: { http: { listen: `127.0.0.1:${port}` } },
      programs: {
        flask: {
          command: [PYTHON, join(RECIPES, "flask_app.py")],
          env: ENV,
          protocol: "on",
          sockets: ["http"],
          shutdown: { teardown: "destroy", handlers_timeout: "5s", teardown_hang_after: "1s", timeout: "10s" },
        },
      },
    });
    await v.waitFor(isMsg(/^flask\/0.* ready after/), 30_000);
    for (let i = 0; i < 3; i += 1) {
      const res = await get(`http://127.0.0.1:${port}/`);
      expect(res.status, res.body).to.equal(200);
      expect(JSON.parse(res.body)).to.have.property("worker", 0);
    }
    v.signal("SIGTERM");
    const { code } = await v.waitExit(30_000);
    expect(code, v.tail()).to.equal(0);
    expect(v.logs.some(isMsg(/^shutdown handler: reason=stop teardown=destroy$/)), v.tail(40)).to.equal(true);
    // Every queued job was done before the thread ended.
    expect(v.logs.some(isMsg(/^background thread stopped, 3 jobs done$/)), v.tail(40)).to.equal(true);
    const [exit] = exitsOf(v);
    expect(exit!.outcome, v.tail(40)).to.equal("clean");
    expect(exit!.hang).to.equal(null);
    expect(exit!.shutdown_ms as number).to.be.below(3000);
  });

  it("the same Flask app with the handler unsubscribed is the mod_wsgi hang: teardown hangs and the worker is forced", async () => {
    // Proves the recipe's handler is what makes the stop clean: without it
    // the non-daemon thread holds the interpreter's teardown.
    const port = await freePort();
    const v = new Vigild({
      sockets: { http: { listen: `127.0.0.1:${port}` } },
      programs: {
        flask: {
          command: [PYTHON, "-c", `import runpy, vigil; vigil.subscribe_shutdown = lambda *a, **k: None; runpy.run_path(${JSON.stringify(join(RECIPES, "flask_app.py"))}, run_name="__main__")`],
          env: ENV,
          protocol: "on",
          sockets: ["http"],
          shutdown: { teardown: "destroy", handlers_timeout: "1s", teardown_hang_after: "500ms", timeout: "2s" },
        },
      },
    });
    await v.waitFor(isMsg(/^flask\/0.* ready after/), 30_000);
    v.signal("SIGTERM");
    const { code } = await v.waitExit(30_000);
    expect(code, v.tail()).to.equal(0);
    const [exit] = exitsOf(v);
    expect(exit!.outcome, v.tail(40)).to.equal("forced");
    expect(exit!.hang).to.equal("teardown");
  });

  it("uvicorn --fd 3: an ASGI app on the vigil socket; its async handler runs on uvicorn's loop and awaits the app's task", async () => {
    const port = await freePort();
    const v = new Vigild({
      sockets: { http: { listen: `127.0.0.1:${port}` } },
      programs: {
        asgi: {
          command: [PYTHON, "-m", "uvicorn", "--fd", "3", "--app-dir", RECIPES, "asgi_app:app"],
          env: ENV,
          protocol: "on",
          sockets: ["http"],
          shutdown: { teardown: "destroy", handlers_timeout: "5s", teardown_hang_after: "2s", timeout: "10s" },
        },
      },
    });
    await v.waitFor(isMsg(/^asgi\/0.* ready after/), 30_000);
    await new Promise((r) => setTimeout(r, 300));
    const res = await get(`http://127.0.0.1:${port}/`);
    expect(res.status, res.body).to.equal(200);
    expect(res.body).to.match(/^ticks \d+\n$/);
    v.signal("SIGTERM");
    const { code } = await v.waitExit(30_000);
    expect(code, v.tail()).to.equal(0);
    expect(v.logs.some(isMsg(/^shutdown handler on the event loop \(thread MainThread\): reason=stop$/)), v.tail(40)).to.equal(true);
    expect(v.logs.some(isMsg(/^ticker stopped after \d+ ticks$/)), v.tail(40)).to.equal(true);
    const [exit] = exitsOf(v);
    expect(exit!.outcome, v.tail(40)).to.equal("clean");
    expect(exit!.hang).to.equal(null);
    expect(exit!.code).to.equal(0);
  });
});

describe("Python client: asyncio shutdown handlers", function () {
  this.timeout(60_000);
  afterEach(stopAll);

  it("a coroutine function and a plain function with loop= run on the loop's thread, in order; the stop is clean", async () => {
    const v = new Vigild({
      programs: { aio: { command: [PYTHON, ASYNC_WORKER], protocol: "on", shutdown: { teardown: "destroy", timeout: "5s" } } },
    });
    await v.waitFor(isMsg(/^aio\/0.* ready after/), 20_000);
    v.signal("SIGTERM");
    const { code } = await v.waitExit(20_000);
    expect(code, v.tail()).to.equal(0);
    const lines = v.logs.filter((e) => e.stream === "stdout").map((e) => e.msg);
    expect(lines, v.tail(40)).to.deep.equal(["async handler on MainThread reason=stop", "plain handler with loop= on MainThread", "event loop ended"]);
    expect(exitsOf(v)[0]!.outcome).to.equal("clean");
  });

  it("a coroutine past handlers_timeout is cancelled on its loop, the later handler is not begun, and teardown goes on", async () => {
    const v = new Vigild({
      programs: {
        aio: { command: [PYTHON, ASYNC_WORKER, "--slow"], protocol: "on", shutdown: { teardown: "destroy", handlers_timeout: "1s", timeout: "10s" } },
      },
    });
    await v.waitFor(isMsg(/^aio\/0.* ready after/), 20_000);
    v.signal("SIGTERM");
    const { code } = await v.waitExit(20_000);
    expect(code, v.tail()).to.equal(0);
    expect(v.logs.some(isMsg(/^async handler cancelled$/)), v.tail(40)).to.equal(true);
    expect(v.logs.some(isMsg(/cancelled at handlers_timeout$/)), v.tail(40)).to.equal(true);
    expect(v.logs.some(isMsg(/^plain handler/)), v.tail(40)).to.equal(false);
    const [exit] = exitsOf(v);
    expect(exit!.hang).to.equal("handlers");
    expect(exit!.shutdown_ms as number).to.be.within(1000, 3000);
  });

  it("a coroutine function subscribed with no loop running is refused at once, vigild or not", async () => {
    const script = "import vigil\nasync def on_stop(event, **kwargs): pass\nvigil.subscribe_shutdown(on_stop)\n";
    const result = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const child = spawn(PYTHON, ["-c", script], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...ENV }, stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      child.once("exit", (code) => resolve({ code, err }));
    });
    expect(result.code).to.equal(1);
    expect(result.err).to.match(/RuntimeError: vigil\.subscribe_shutdown\(<function on_stop .*\): a coroutine function needs an event loop/);
  });
});
