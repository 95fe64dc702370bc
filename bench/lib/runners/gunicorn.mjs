// gunicorn as the socket tests run it (Debian's package), and gunicorn as its
// own supervisor: one master whose HUP is its own rolling reload, a peer of
// the web scenarios only (`web(port)`, `restartWorkers()`, `end()`).
import { join } from "node:path";
import { HOST, LineProcess, PATH, REPO } from "../proc.mjs";
import { children, now, sleep, trackPid } from "../util.mjs";

export const APP_DIR = join(REPO, "test/fixtures/web");
export const GUNICORN_SHUTDOWN = { signal: "SIGTERM", timeout: "10s", handlers_timeout: "5s" };

/** gunicorn's argv: one worker process with 4 threads per master unless told otherwise. */
export function gunicorn({ workers = 1, bind = null, reusePort = false } = {}) {
  return [
    "gunicorn",
    "--chdir",
    APP_DIR,
    ...(bind ? ["--bind", bind] : []),
    ...(reusePort ? ["--reuse-port"] : []),
    "--workers",
    String(workers),
    "--threads",
    "4",
    "--graceful-timeout",
    "5",
    "--log-level",
    "warning",
    "app:app",
  ];
}

export class GunicornMaster extends LineProcess {
  constructor(port, workers) {
    const [command, ...args] = gunicorn({ workers, bind: `${HOST}:${port}` });
    super(command, args, { cwd: REPO, env: { PATH } });
    this.name = "gunicorn";
    this.workers = workers;
  }

  static async web(port) {
    return new GunicornMaster(port, 4);
  }

  /** SIGHUP; resolves once every old worker is gone and `workers` new ones run. */
  async restartWorkers(timeoutMs = 60_000) {
    const old = new Set(children(this.pid));
    process.kill(this.pid, "SIGHUP");
    const until = now() + timeoutMs;
    for (;;) {
      const kids = children(this.pid);
      if (kids.length === this.workers && kids.every((p) => !old.has(p))) {
        for (const p of kids) trackPid(p);
        return;
      }
      if (now() > until) throw new Error(`gunicorn HUP: workers ${kids.join(" ")} after ${timeoutMs} ms (old ${[...old].join(" ")})`);
      await sleep(10);
    }
  }

  async end() {
    if (this.exitAt === null) await this.stop(30_000).catch(() => undefined);
    await this.kill();
  }
}
