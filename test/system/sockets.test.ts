// vigil.socket under a real systemd: systemd owns the listening socket and
// passes it to vigild (LISTEN_FDS, FileDescriptorName=http), vigild hands it
// to its gunicorn workers, and under Debian's wrk `systemctl restart vigil`
// loses no request: while vigild and its workers restart, connections wait in
// systemd's socket.
import { expect } from "chai";
import { SRC, containerForSuite } from "./container.js";
import { wrk } from "../helpers/wrk.js";
import { freePort, listenersOn } from "../helpers/net.js";

const UNIT = "vigil.service";
const SOCKET = "vigil.socket";

describe("vigil.socket under a real systemd (system tests)", function () {
  this.timeout(120_000);
  const ct = containerForSuite();

  it("systemctl restart vigil under load loses no request: systemd holds the one listening socket", async () => {
    const port = await freePort();
    const cursor = await ct().cursor();
    await ct().writeFile(
      "/etc/vigil/vigil.yaml",
      `metrics:
  listen: 127.0.0.1:0
sockets:
  http:
    listen: 127.0.0.1:${port}
programs:
  web:
    command: [gunicorn, --chdir, ${SRC}/test/fixtures/web, --workers, "1", --threads, "4", "app:app"]
    instances: 2
    sockets: [http]
    shutdown: { signal: SIGTERM, timeout: 10s, handlers_timeout: 5s }
`,
    );
    // The installed template, pointed at this test's port.
    await ct().run(["sed", "-i", `s|^ListenStream=0.0.0.0:8080$|ListenStream=127.0.0.1:${port}|`, `/etc/systemd/system/${SOCKET}`]);
    await ct().run(["systemctl", "daemon-reload"]);
    await ct().run(["systemctl", "start", SOCKET]);
    await ct().run(["systemctl", "start", UNIT], { timeoutMs: 60_000 });
    try {
      const journal = await ct().journal(UNIT, { afterCursor: cursor });
      expect(journal).to.match(/socket http taken from systemd \(fd 3, 127\.0\.0\.1:\d+\)/);
      expect(journal).to.not.match(/listens on .*, not on/);
      const url = `http://127.0.0.1:${port}/`;
      const until = Date.now() + 20_000;
      let answered = false;
      while (!answered && Date.now() < until) {
        answered = await fetch(url, { headers: { connection: "close" } }).then((r) => r.ok, () => false);
        if (!answered) await new Promise((r) => setTimeout(r, 100));
      }
      expect(answered, "gunicorn answers through systemd's socket").to.equal(true);
      expect(listenersOn(port), "one listening socket on the port, systemd's").to.equal(1);
      const before = (await ct().show(UNIT, ["MainPID"])).MainPID;

      const load = wrk(url, 10);
      await new Promise((r) => setTimeout(r, 2000));
      const restart = await ct().exec(["systemctl", "restart", UNIT], { timeoutMs: 60_000 });
      expect(restart.code, restart.stderr).to.equal(0);
      const result = await load;
      const after = (await ct().show(UNIT, ["MainPID", "ActiveState"]));
      expect(after.MainPID, "vigild really restarted").to.not.equal(before);
      expect(after.ActiveState).to.equal("active");
      expect(result.requests, result.output).to.be.above(100);
      expect(result.socketErrors, `socket errors\n${result.output}`).to.equal(0);
      expect(result.non2xx, result.output).to.equal(0);
      // The socket outlived vigild: still exactly one listener.
      expect(listenersOn(port)).to.equal(1);
    } finally {
      await ct().exec(["systemctl", "stop", UNIT], { timeoutMs: 60_000 });
      await ct().exec(["systemctl", "stop", SOCKET]);
    }
  });
});
