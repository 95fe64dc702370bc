// GET /metrics and /healthz on metrics.listen, and nothing else.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { ListenAddress } from "../config/types.js";
import type { Metrics } from "./metrics.js";

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

export function startMetricsServer(
  metrics: Metrics,
  listen: ListenAddress,
  healthy: () => { ok: boolean; detail: string },
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      metrics.registry.metrics().then(
        (body) => res.writeHead(200, { "Content-Type": metrics.registry.contentType }).end(body),
        (err: Error) => res.writeHead(500, { "Content-Type": "text/plain" }).end(`${err.message}\n`),
      );
      return;
    }
    if (path === "/healthz") {
      const health = healthy();
      res.writeHead(health.ok ? 200 : 503, { "Content-Type": "text/plain" }).end(`${health.detail}\n`);
      return;
    }
    res.writeHead(404, { "Content-Type": "text/plain" }).end("not found: try /metrics\n");
  });
  // Scrapers keep connections open; they must not hold vigild's stop.
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      const where = `${listen.host.includes(":") ? `[${listen.host}]` : listen.host}:${listen.port}`;
      reject(new Error(`cannot listen for metrics on ${where}: ${err.code === "EADDRINUSE" ? "address already in use" : err.message}`));
    });
    server.listen(listen.port, listen.host, () => {
      const address = server.address() as AddressInfo;
      const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
      resolve({
        url: `http://${host}:${address.port}/metrics`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
