// A stand-in for systemd's NOTIFY_SOCKET: every datagram vigild sends, parsed
// into its KEY=VALUE fields, in order.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO, killGroup } from "./vigild.js";

export type Notification = Record<string, string>;

export class NotifyReceiver {
  readonly path: string;
  readonly messages: Notification[] = [];
  private readonly dir: string;
  private readonly child: ChildProcess;
  private waiters: Array<() => void> = [];

  private constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "vigil-notify-"));
    this.path = join(this.dir, "notify.sock");
    this.child = spawn("python3", [join(REPO, "test/fixtures/tools/notify_receiver.py"), this.path], {
      stdio: ["ignore", "pipe", "inherit"],
    });
  }

  static async start(): Promise<NotifyReceiver> {
    const r = new NotifyReceiver();
    await new Promise<void>((resolve, reject) => {
      let pending = "";
      r.child.once("exit", (code) => reject(new Error(`notify receiver exited ${code}`)));
      r.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf("\n")) !== -1) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (line === "listening") resolve();
          else r.push(JSON.parse(line) as Record<string, string>);
        }
      });
    });
    return r;
  }

  private push(fields: Record<string, string>): void {
    this.messages.push(fields);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  waitFor(match: (m: Notification) => boolean, timeoutMs = 10_000, what = "a notification"): Promise<Notification> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${what}; got:\n${this.messages.map((m) => JSON.stringify(m)).join("\n")}`)),
        timeoutMs,
      );
      const check = (): void => {
        const found = this.messages.find(match);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        } else this.waiters.push(check);
      };
      check();
    });
  }

  close(): void {
    if (this.child.pid) killGroup(this.child.pid);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
