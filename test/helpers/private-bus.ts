// A real, private dbus-daemon for one test suite (docs/testing.md, "The real
// parts"). Its address is read from the first line it prints; stop() kills
// it by pid and waits until it is gone.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const START_TIMEOUT_MS = 5000;

export class PrivateBus {
  private constructor(
    private readonly child: ChildProcess,
    readonly address: string,
    private readonly exited: Promise<void>,
    private readonly dir: string | null,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  /**
   * `policy`: extra <policy> XML for a bus with its own configuration (the
   * session bus's defaults otherwise), e.g. to deny a method.
   */
  static async start(policy?: string): Promise<PrivateBus> {
    let dir: string | null = null;
    let args = ["--session", "--nofork", "--print-address=1"];
    if (policy !== undefined) {
      dir = mkdtempSync(join(tmpdir(), "vigil-bus-"));
      const config = join(dir, "bus.conf");
      writeFileSync(
        config,
        `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=${dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
  ${policy}
</busconfig>
`,
      );
      args = ["--config-file", config, "--nofork", "--print-address=1"];
    }
    const child = spawn("dbus-daemon", args, { stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      const address = await new Promise<string>((resolve, reject) => {
        let pending = "";
        child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
          pending += chunk;
          const nl = pending.indexOf("\n");
          if (nl !== -1) resolve(pending.slice(0, nl).trim());
        });
        child.once("error", reject);
        child.once("exit", (code) => reject(new Error(`dbus-daemon exited (${code}) before printing its address: ${stderr}`)));
        timer = setTimeout(() => reject(new Error(`dbus-daemon printed no address within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      });
      return new PrivateBus(child, address, exited, dir);
    } catch (err) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
      if (dir !== null) rmSync(dir, { recursive: true, force: true });
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) process.kill(this.pid, "SIGTERM");
    await this.exited;
    if (this.dir !== null) rmSync(this.dir, { recursive: true, force: true });
  }
}
