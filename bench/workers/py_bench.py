"""The bench's Python worker: the same program under vigild, the floor, PM2 and supervisord.

    python3 py_bench.py [--handler-ms MS] [--teardown-hang]

--handler-ms MS   a shutdown handler that takes MS milliseconds (time.sleep)
--teardown-hang   a non-daemon thread that never ends and that no handler
                  stops: once the main thread leaves, the interpreter's
                  teardown waits for it forever (the mod_wsgi case)

Under vigild (or the floor script, which speaks the same protocol) the worker
uses lib/python/vigil/: subscribe_shutdown(handler), ready(), heartbeats from
vigil's daemon thread, and teardown as vigil's `destroy` mode does (SystemExit
in the main thread). Under PM2 or supervisord, which only send SIGTERM, it does
the same work: a SIGTERM handler runs the same shutdown handler, then raises
SystemExit(0) so the interpreter tears down normally (and hangs with
--teardown-hang). Unsupervised it says ready by creating $BENCH_READY_DIR/<pid>
once its SIGTERM handler is installed.

It prints nothing, so supervisors' log handling costs the same for all.
"""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib", "python"))
import vigil  # noqa: E402

handler_ms = 0.0
teardown_hang = False
args = sys.argv[1:]
while args:
    arg = args.pop(0)
    if arg == "--handler-ms":
        handler_ms = float(args.pop(0))
    elif arg == "--teardown-hang":
        teardown_hang = True
    else:
        sys.exit("py_bench.py: unknown argument %r" % arg)


def on_stop(event, **kwargs):
    if handler_ms > 0:
        time.sleep(handler_ms / 1000.0)


if teardown_hang:
    forever = threading.Event()
    threading.Thread(target=forever.wait, name="never-ends", daemon=False).start()

if vigil.attached:
    vigil.subscribe_shutdown(on_stop)
    vigil.ready()
else:
    def on_sigterm(signum, frame):
        on_stop("process_stopping", reason="stop")
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    ready_dir = os.environ.get("BENCH_READY_DIR")
    if ready_dir:
        open(os.path.join(ready_dir, str(os.getpid())), "w").close()

while True:
    time.sleep(3600)
