// The one interface every supervisor of the bench implements, so that each
// scenario (bench/scenarios/) is written once and run on all of them:
// RUNNERS.v vigild, RUNNERS.f the physical floor (bench/floor.mjs), RUNNERS.p
// PM2, RUNNERS.s supervisord (bench/lib/runners/*.mjs).
//
//   await RUNNERS[sys].workers(spec)  the bench's Python workers (workers/py_bench.py)
//     .ready(timeoutMs)    ms from the supervisor's start until every worker is ready
//                          (PM2, supervisord: until each has installed its SIGTERM handler)
//     .stop(timeoutMs)     ms from SIGTERM (PM2: `pm2 kill`) until it has exited with its workers
//     .pid                 the supervisor's process: the workers' parent, sampled for CPU and RSS
//     .workerPids()        the workers running and ready
//     .readyAgain(pid, ms) resolves once the worker `pid` (a replacement) is ready
//     .end()               stops it unmeasured if it still runs and removes its files
//     vigild and the floor report each worker's life on stdout: .lines, .waitFor(match, ms, what, from),
//     .waitUntil(), .summaryLine() (vigild), and the matchers .hung(pid), .spawned(pid)
//   await RUNNERS[sys].web(port, app)  4 web servers sharing 127.0.0.1:port; app "node"
//                          (test/fixtures/web/node_http.mjs) or "gunicorn" (test/fixtures/web/app.py)
//     .restartWorkers()    a rolling restart (not the floor)
//     .restartSupervisor() the supervisor restarted as its service would be (PM2, supervisord)
//     .end()
//   await RUNNERS[sys].flood()  one worker printing 100-byte lines flat out (workers/py_flood.py)
//     .written() .reached() lines the worker wrote, lines that reached the log
//     .pid                 the supervisor carrying them (null: none), .readerPid the log's reader (or null)
//     .extra()             what else the supervisor reports once measured, .end()
//
// A workers spec, translated by each runner into its own configuration:
//   programs: [{ name, count, args: [py_bench.py options] }     a protocol worker
//             | { name, count, command: [argv] }]               a plain one (vigild's protocol: auto)
//   heartbeatMs: 4000 unless given
//   stop: { handlersMs, timeoutMs, teardownHangAfterMs }  (optional; PM2 kill_timeout and
//         supervisord stopwaitsecs are timeoutMs, else 5 s)
//   restart: { backoff }   respawn at once, without limit; backoff: vigild's backoff_initial
//   hangs: true            the floor checks heartbeats too (vigild always does)
import { Floor } from "./runners/floor.mjs";
import { Pm2 } from "./runners/pm2.mjs";
import { Supervisord } from "./runners/supervisord.mjs";
import { Vigild } from "./runners/vigil.mjs";

export const RUNNERS = { v: Vigild, f: Floor, p: Pm2, s: Supervisord };
export const NAMES = { v: "vigil", f: "floor", p: "PM2", s: "supervisord" };

export { checkVigilConfig } from "./runners/vigil.mjs";
export { GunicornMaster } from "./runners/gunicorn.mjs";
