// The protocol socket of one worker, as events: parsed messages and counted
// protocol errors. Reading never throws into vigild, whatever the peer writes.
import type { Duplex } from "node:stream";
import {
  LineDecoder,
  encodeShutdown,
  parseWorkerMessage,
  type ShutdownMessage,
  type WorkerMessage,
} from "../../lib/protocol/index.js";

export interface ChannelSink {
  message(message: WorkerMessage): void;
  protocolError(error: string): void;
}

export class Channel {
  private readonly decoder = new LineDecoder();
  private closed = false;

  constructor(
    private readonly socket: Duplex,
    sink: ChannelSink,
  ) {
    socket.on("data", (chunk: Buffer) => {
      for (const item of this.decoder.push(chunk)) {
        if (item.kind === "oversized") {
          sink.protocolError(`line of ${item.bytes} bytes is over the 64 KiB limit`);
          continue;
        }
        const parsed = parseWorkerMessage(item.line);
        if (parsed.ok) sink.message(parsed.message);
        else sink.protocolError(parsed.error);
      }
    });
    // EPIPE/ECONNRESET from a worker that died mid-write: its exit tells the story.
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.closed = true;
    });
  }

  sendShutdown(message: Omit<ShutdownMessage, "type">): void {
    if (this.closed || this.socket.destroyed) return;
    this.socket.write(encodeShutdown(message));
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}
