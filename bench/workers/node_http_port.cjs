// The web server of the PM2 rows: bench's twin of test/fixtures/web/node_http.mjs
// (same answer, same graceful close), listening on $PORT as PM2's cluster mode
// expects (its primary owns the port and hands connections to the instances).
// CommonJS: PM2's cluster mode require()s the script.
const http = require("node:http");

const server = http.createServer((req, res) => {
  res.setHeader("content-type", "text/plain");
  res.end(`pid=${process.pid}\n`);
});
process.on("SIGINT", () => server.close(() => process.exit(0)));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
server.listen(Number(process.env.PORT), "127.0.0.1");
