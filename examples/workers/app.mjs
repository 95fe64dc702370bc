// A Node web worker under vigil: serves HTTP on vigil's socket `api`
// (127.0.0.1:8081) through listenFds(), says ready once it accepts, and on
// shutdown stops accepting at once and lets in-flight requests finish, so a
// rolling restart loses no request.
import http from "node:http";
import { listenFds, ready, status, subscribeShutdown, worker } from "../../dist/lib/node/worker.js";

let served = 0;
const server = http.createServer((req, res) => {
  served++;
  res.end(`hello from node pid ${process.pid} (vigil worker ${worker})\n`);
});
const timer = setInterval(() => status(`served ${served} requests`), 5000);

subscribeShutdown(async (event, info) => {
  console.log(`shutting down: ${event} reason=${info.reason}`);
  clearInterval(timer);
  // close() stops accepting now and resolves once open connections are done.
  await new Promise((resolve) => server.close(resolve));
});

server.listen({ fd: listenFds().api }, () => {
  ready();
  console.log(`node-app worker ${worker} serving, pid ${process.pid}`);
});
