// The floor of a scrape: a minimal HTTP server on loopback that answers every
// request with the same bytes (a body vigild served), so the bench can tell
// vigild's own cost per scrape from the cost of HTTP on this machine.
//
//   node bench/serve.mjs BODY_FILE        prints {"address":"http://127.0.0.1:PORT/metrics"}
import { createServer } from "node:http";
import { readFileSync } from "node:fs";

const body = readFileSync(process.argv[2]);
const server = createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8", "Content-Length": body.length });
  res.end(body);
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ address: `http://127.0.0.1:${server.address().port}/metrics` }) + "\n");
});
process.on("SIGTERM", () => process.exit(0));
