// A Node worker under vigil: says ready, reports status, and closes its
// timer from a shutdown handler so the event loop can drain.
import { ready, status, subscribeShutdown, worker } from "../../dist/lib/node/worker.js";

let ticks = 0;
const timer = setInterval(() => status(`served ${++ticks} ticks`), 5000);

subscribeShutdown(async (event, info) => {
  console.log(`shutting down: ${event} reason=${info.reason}`);
  clearInterval(timer);
});

ready();
console.log(`node-app worker ${worker} ready, pid ${process.pid}`);
