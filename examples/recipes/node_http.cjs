// A Node http server under vigil, written as CommonJS (require). After
//   npm install /usr/local/share/vigil/node/vigil-worker-*.tgz
// in the application's directory:
//
//   # /etc/vigil/vigil.yaml
//   sockets:
//     http: { listen: 127.0.0.1:8081 }
//   programs:
//     api:
//       command: [node, /srv/api/node_http.cjs]
//       protocol: on
//       instances: 2
//       sockets: [http]
//
// The server listens on vigil's socket, says ready once it accepts, and its
// shutdown handler closes it: no new connections, the event loop drains once
// the requests in flight are answered, and the worker exits clean.
"use strict";
const http = require("node:http");
const { listenFds, ready, subscribeShutdown, worker } = require("@vigil/worker");

let served = 0;
const server = http.createServer((req, res) => {
  served += 1;
  res.end(`worker ${worker} served ${served}\n`);
});

const fd = listenFds().http;
server.listen(fd !== undefined ? { fd } : { port: 8081, host: "127.0.0.1" }, () => ready());

// A handler may return a promise: vigil waits for it, up to handlers_timeout.
// One that rejects (or throws) is reported on stderr, the others still run,
// and the stop goes on.
subscribeShutdown(
  (event, { reason }) =>
    new Promise((resolve) => {
      server.close(() => {
        console.log(`closed after ${served} requests (${reason})`);
        resolve();
      });
      server.closeIdleConnections(); // keep-alive connections would hold close() up
    }),
);
