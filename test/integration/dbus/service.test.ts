// The D-Bus service against a real private dbus-daemon, called through a
// dbus-next client proxy (another implementation than vigilctl's raw calls).
import { once } from "node:events";
import { expect } from "chai";
import dbus from "dbus-next";
import { startDbusService, type DbusService } from "../../../daemon/dbus/service.js";
import { BUS_NAME, ERRORS, INTERFACE, OBJECT_PATH, rowToWorker } from "../../../daemon/dbus/contract.js";
import { FakeControl, sampleReport } from "../../helpers/fake-control.js";
import { PrivateBus } from "../../helpers/private-bus.js";

type Fn = (...args: unknown[]) => Promise<unknown>;

function method(iface: dbus.ClientInterface, name: string): Fn {
  const f = iface[name];
  if (typeof f !== "function") throw new Error(`proxy has no method ${name}`);
  return (f as Fn).bind(iface);
}

async function rejection(promise: Promise<unknown>): Promise<dbus.DBusError> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(dbus.DBusError);
    return err as dbus.DBusError;
  }
  throw new Error("expected a D-Bus error, got a reply");
}

interface Logged {
  info: string[];
  warn: string[];
  log: { info(m: string): void; warn(m: string): void };
}

function logger(): Logged {
  const l: Logged = {
    info: [],
    warn: [],
    log: { info: (m) => l.info.push(m), warn: (m) => l.warn.push(m) },
  };
  return l;
}

/** Bounded wait for an event, so a missing signal fails fast with its name. */
async function next(emitter: NodeJS.EventEmitter, event: string): Promise<unknown[]> {
  return (await once(emitter, event, { signal: AbortSignal.timeout(5000) })) as unknown[];
}

describe("dbus service (org.vigil.Supervisor1 on a private bus)", function () {
  let bus: PrivateBus;
  let control: FakeControl;
  let service: DbusService | null = null;
  let client: dbus.MessageBus;
  let iface: dbus.ClientInterface;
  let props: dbus.ClientInterface;
  let logged: Logged;

  before(async function () {
    bus = await PrivateBus.start();
    control = new FakeControl();
    logged = logger();
    service = await startDbusService(control, { bus: "session", address: bus.address, log: logged.log });
    client = dbus.sessionBus({ busAddress: bus.address });
    const proxy = await client.getProxyObject(BUS_NAME, OBJECT_PATH);
    iface = proxy.getInterface(INTERFACE);
    props = proxy.getInterface("org.freedesktop.DBus.Properties");
  });

  after(async function () {
    client?.disconnect();
    await service?.close();
    await bus?.stop();
  });

  it("logs that it serves the name", function () {
    expect(logged.info).to.deep.equal([`D-Bus: serving ${BUS_NAME} on the session bus`]);
  });

  it("ListWorkers returns one struct per worker (pid 0 / -1 for none, whole ms)", async function () {
    const rows = (await method(iface, "ListWorkers")()) as unknown[][];
    expect(rows).to.have.length(4);
    expect(rows[0]).to.deep.equal(["web", 0, 1001, "running", 192401n, 0, 120n, "serving 12 req/s"]);
    expect(rows[2]).to.deep.equal(["batch", 0, 0, "failed", -1n, 11, -1n, ""]);
    expect(rowToWorker(rows[3]!)).to.deep.equal({
      program: "plain",
      worker: 0,
      pid: 1003,
      state: "running",
      uptimeMs: 7_200_000,
      restarts: 0,
      lastHeartbeatAgeMs: null,
      status: null,
    });
  });

  it("GetStatus returns the whole snapshot as JSON", async function () {
    const json = (await method(iface, "GetStatus")()) as string;
    expect(JSON.parse(json)).to.deep.equal(control.status());
  });

  it("GetLastShutdown returns '' without a report, the report's JSON with one", async function () {
    control.report = null;
    expect(await method(iface, "GetLastShutdown")()).to.equal("");
    control.report = sampleReport();
    expect(JSON.parse((await method(iface, "GetLastShutdown")()) as string)).to.deep.equal(sampleReport());
  });

  it("RestartProgram replies only when the restart is done", async function () {
    let release!: () => void;
    control.restartGate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let replied = false;
    const call = method(iface, "RestartProgram")("web").then((reply) => {
      replied = true;
      return reply;
    });
    try {
      // Other calls are served meanwhile.
      expect((JSON.parse((await method(iface, "GetStatus")()) as string) as { state: string }).state).to.equal("running");
      expect(replied).to.equal(false);
    } finally {
      release();
      control.restartGate = null;
    }
    expect(await call).to.equal(null);
    expect(control.restarted).to.deep.equal(["web"]);
  });

  it("RestartProgram of an unknown program is the UnknownProgram error, and the service keeps working", async function () {
    const err = await rejection(method(iface, "RestartProgram")("nope"));
    expect(err.type).to.equal(ERRORS.unknownProgram);
    expect(err.text).to.equal('no program named "nope"');
    const rows = (await method(iface, "ListWorkers")()) as unknown[];
    expect(rows).to.have.length(4);
  });

  it("RestartProgram that fails otherwise is the Failed error with the daemon's message", async function () {
    control.failingProgram = "plain";
    try {
      const err = await rejection(method(iface, "RestartProgram")("plain"));
      expect(err.type).to.equal(ERRORS.failed);
      expect(err.text).to.equal("worker plain/0 did not become ready within 30s");
    } finally {
      control.failingProgram = null;
    }
  });

  it("Reload answers (true, summary) or (false, errors joined by newlines)", async function () {
    control.reloadResult = { ok: true, summary: "reloaded: nothing changed" };
    expect(await method(iface, "Reload")()).to.deep.equal([true, "reloaded: nothing changed"]);
    control.reloadResult = {
      ok: false,
      errors: ["vigil.yaml:3: programs.web.instances: expected a number", "vigil.yaml:9: programs.x: unknown key"],
    };
    expect(await method(iface, "Reload")()).to.deep.equal([
      false,
      "vigil.yaml:3: programs.web.instances: expected a number\nvigil.yaml:9: programs.x: unknown key",
    ]);
  });

  it("exposes State, Version, StatusText and Workers as read-only properties", async function () {
    const all = (await method(props, "GetAll")(INTERFACE)) as Record<string, dbus.Variant>;
    const values = Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.value as unknown]));
    expect(values).to.deep.equal({
      State: "running",
      Version: "0.1.0",
      StatusText: "running: 3/3 workers ready",
      Workers: 4,
    });
    const err = await rejection(method(props, "Set")(INTERFACE, "State", new dbus.Variant("s", "stopped")));
    expect(err.type).to.equal("org.freedesktop.DBus.Error.InvalidArgs");
    expect(control.status().state).to.equal("running");
  });

  it("forwards worker-hung and worker-exited events as WorkerHung and WorkerExited signals", async function () {
    const hung = next(iface, "WorkerHung");
    const exited = next(iface, "WorkerExited");
    // A round trip on the client connection: the bus has the match rules before the service emits.
    await method(iface, "GetStatus")();
    control.emit({ type: "worker-hung", program: "web", worker: 1, pid: 1002, phase: "teardown", afterMs: 1000.6 });
    control.emit({
      type: "worker-exited",
      program: "web",
      worker: 1,
      pid: 1002,
      code: null,
      signal: "SIGKILL",
      outcome: "forced",
    });
    expect(await hung).to.deep.equal(["web", 1, 1002, "teardown", 1001n]);
    expect(await exited).to.deep.equal(["web", 1, 1002, -1, "SIGKILL", "forced"]);

    const crash = next(iface, "WorkerExited");
    await method(iface, "GetStatus")();
    control.emit({ type: "worker-exited", program: "plain", worker: 0, pid: null, code: 3, signal: null, outcome: null });
    expect(await crash).to.deep.equal(["plain", 0, 0, 3, "", ""]);
  });

  it("signals PropertiesChanged for State/StatusText/Workers it sees change", async function () {
    const changed = next(props, "PropertiesChanged");
    await method(iface, "GetStatus")();
    control.snapshot.state = "reloading";
    control.snapshot.statusText = "reloading /etc/vigil/vigil.yaml";
    service!.propertiesMaybeChanged();
    const [name, values, invalidated] = await changed;
    expect(name).to.equal(INTERFACE);
    expect(invalidated).to.deep.equal([]);
    const plain = Object.fromEntries(
      Object.entries(values as Record<string, dbus.Variant>).map(([k, v]) => [k, v.value as unknown]),
    );
    expect(plain).to.deep.equal({ State: "reloading", StatusText: "reloading /etc/vigil/vigil.yaml" });

    // ... and after a control event, without being told.
    const again = next(props, "PropertiesChanged");
    await method(iface, "GetStatus")();
    control.snapshot.state = "running";
    control.emit({ type: "worker-hung", program: "web", worker: 0, pid: 1001, phase: "running", afterMs: 10 });
    const [, values2] = await again;
    expect(Object.keys(values2 as object)).to.deep.equal(["State"]);
  });

  it("introspects with named arguments, the signals and the read-only properties", async function () {
    const reply = await client.call(
      new dbus.Message({
        destination: BUS_NAME,
        path: OBJECT_PATH,
        interface: "org.freedesktop.DBus.Introspectable",
        member: "Introspect",
      }),
    );
    const xml = String(reply!.body[0]);
    expect(xml).to.include(`<interface name="${INTERFACE}">`);
    for (const fragment of [
      `<method name="ListWorkers">\n      <arg name="workers" type="a(suusxuxs)" direction="out"/>`,
      `<method name="GetStatus">\n      <arg name="status_json" type="s" direction="out"/>`,
      `<method name="RestartProgram">\n      <arg name="program" type="s" direction="in"/>`,
      `<method name="Reload">\n      <arg name="ok" type="b" direction="out"/>\n      <arg name="summary_or_errors" type="s" direction="out"/>`,
      `<method name="GetLastShutdown">\n      <arg name="report_json" type="s" direction="out"/>`,
      `<signal name="WorkerHung">\n      <arg name="program" type="s"/>\n      <arg name="worker" type="u"/>\n      <arg name="pid" type="u"/>\n      <arg name="phase" type="s"/>\n      <arg name="after_ms" type="t"/>`,
      `<signal name="WorkerExited">\n      <arg name="program" type="s"/>\n      <arg name="worker" type="u"/>\n      <arg name="pid" type="u"/>\n      <arg name="code" type="i"/>\n      <arg name="signal" type="s"/>\n      <arg name="outcome" type="s"/>`,
      `<property name="State" type="s" access="read">`,
      `<property name="Version" type="s" access="read">\n      <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="const"/>`,
      `<property name="StatusText" type="s" access="read">`,
      `<property name="Workers" type="u" access="read">`,
    ]) {
      expect(xml).to.include(fragment);
    }
  });

  it("refuses to start when the name is already owned, and the owner keeps serving", async function () {
    const second = logger();
    let error: unknown = null;
    try {
      const extra = await startDbusService(new FakeControl(), { bus: "session", address: bus.address, log: second.log });
      await extra.close();
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(Error);
    expect((error as Error).message).to.equal(
      `the D-Bus name ${BUS_NAME} is already owned on the session bus (${bus.address}): is another vigild running?`,
    );
    expect(second.info).to.deep.equal([]);
    expect(await method(iface, "GetLastShutdown")()).to.be.a("string");
  });
});

describe("dbus service lifecycle", function () {
  let bus: PrivateBus | null = null;
  const services: DbusService[] = [];
  const clients: dbus.MessageBus[] = [];

  afterEach(async function () {
    for (const c of clients.splice(0)) c.disconnect();
    for (const s of services.splice(0)) await s.close();
    await bus?.stop();
    bus = null;
  });

  async function ownerOf(name: string): Promise<string | null> {
    const c = dbus.sessionBus({ busAddress: bus!.address });
    clients.push(c);
    try {
      const reply = await c.call(
        new dbus.Message({
          destination: "org.freedesktop.DBus",
          path: "/org/freedesktop/DBus",
          interface: "org.freedesktop.DBus",
          member: "GetNameOwner",
          signature: "s",
          body: [name],
        }),
      );
      return String(reply!.body[0]);
    } catch (err) {
      if (err instanceof dbus.DBusError && err.type === "org.freedesktop.DBus.Error.NameHasNoOwner") return null;
      throw err;
    }
  }

  it("close() releases the name, so the next vigild can take it", async function () {
    bus = await PrivateBus.start();
    const first = await startDbusService(new FakeControl(), { bus: "session", address: bus.address, log: logger().log });
    expect(await ownerOf(BUS_NAME)).to.be.a("string");
    await first.close();
    await first.close(); // idempotent
    expect(await ownerOf(BUS_NAME)).to.equal(null);
    services.push(await startDbusService(new FakeControl(), { bus: "session", address: bus.address, log: logger().log }));
    expect(await ownerOf(BUS_NAME)).to.be.a("string");
  });

  it("a restart still running at close() ends without a reply: the caller gets NoReply, vigild does not crash", async function () {
    bus = await PrivateBus.start();
    const control = new FakeControl();
    const service = await startDbusService(control, { bus: "session", address: bus.address, log: logger().log });
    services.push(service);
    const client = dbus.sessionBus({ busAddress: bus.address });
    clients.push(client);
    const proxy = await client.getProxyObject(BUS_NAME, OBJECT_PATH);
    const iface = proxy.getInterface(INTERFACE);
    let release!: () => void;
    control.restartGate = new Promise<void>((resolve) => {
      release = resolve;
    });
    control.failingProgram = "plain";
    const started = control.restartStarts();
    const ok = method(iface, "RestartProgram")("web");
    await started;
    const failing = control.restartStarts();
    const fails = method(iface, "RestartProgram")("plain");
    await failing;
    // Replying on a closed connection throws inside dbus-next's promise chain: an unhandled rejection, fatal in Node 20.
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on("unhandledRejection", onUnhandled);
    try {
      await service.close();
      release();
      // Both restarts end after the close (one resolves, one throws): neither may reach dbus-next's reply path.
      for (const call of [ok, fails]) {
        const err = await rejection(call);
        expect(err.type).to.equal("org.freedesktop.DBus.Error.NoReply");
      }
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
    expect(unhandled).to.deep.equal([]);
    expect(control.restarted).to.deep.equal(["web"]);
  });

  it("rejects clearly when the bus cannot be reached", async function () {
    let error: unknown = null;
    try {
      services.push(
        await startDbusService(new FakeControl(), {
          bus: "session",
          address: "unix:path=/nonexistent/vigil-test-bus",
          log: logger().log,
        }),
      );
    } catch (err) {
      error = err;
    }
    expect((error as Error).message).to.equal(
      "cannot connect to the session bus at unix:path=/nonexistent/vigil-test-bus: no such socket (ENOENT)",
    );
  });

  it("survives the bus going away: one warning, events are dropped, close() is bounded", async function () {
    bus = await PrivateBus.start();
    const control = new FakeControl();
    const logged = logger();
    const service = await startDbusService(control, { bus: "session", address: bus.address, log: logged.log });
    services.push(service);
    const warned = new Promise<void>((resolve) => {
      const warn = logged.log.warn.bind(logged.log);
      logged.log.warn = (m: string) => {
        warn(m);
        resolve();
      };
    });
    await bus.stop();
    bus = null;
    // Noticed when the socket ends, not only at the next send.
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        warned,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("no warning after the bus went away")), 5000);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    expect(logged.warn).to.deep.equal([
      "D-Bus connection lost (the bus closed the connection); vigilctl cannot reach vigild until it restarts",
    ]);
    // Events after that are dropped without a throw or another warning.
    control.emit({ type: "worker-hung", program: "web", worker: 0, pid: 1001, phase: "running", afterMs: 10 });
    expect(logged.warn.filter((m) => m.startsWith("D-Bus connection lost"))).to.have.length(1);
    const started = performance.now();
    await service.close();
    expect(performance.now() - started).to.be.below(1500);
  });
});
