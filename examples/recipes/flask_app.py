"""A Flask application under vigil, with a background thread that a shutdown
handler stops: the mod_wsgi 4.9.1 case, done right.

Since Python 3.9 the interpreter's teardown waits for every non-daemon thread,
so a background thread nobody stops keeps a stopping worker alive until it is
killed. Here the shutdown handler ends the thread (after it has finished the
jobs already queued) before vigil lets the interpreter tear down, and the
worker exits clean, in milliseconds, its atexit functions run.

    # /etc/vigil/vigil.yaml
    sockets:
      http: { listen: 127.0.0.1:8083 }
    programs:
      flask:
        command: [/srv/app/.venv/bin/python, /srv/app/flask_app.py]
        protocol: on                    # ready once the server is up
        sockets: [http]
        shutdown: { teardown: destroy, handlers_timeout: 5s, timeout: 10s }

The server is werkzeug's threaded WSGI server on vigil's socket (werkzeug
comes with Flask); waitress (``serve(app, sockets=[...])``) or gunicorn take
the same socket.
"""
import queue
import threading

from flask import Flask
from werkzeug.serving import make_server

import vigil

app = Flask(__name__)
jobs: "queue.Queue[str]" = queue.Queue()
done = []
stop = threading.Event()


def work() -> None:
    # Drains what is queued even once told to stop: no job is lost.
    while not (stop.is_set() and jobs.empty()):
        try:
            done.append(jobs.get(timeout=0.1))
        except queue.Empty:
            pass
    print("background thread stopped, %d jobs done" % len(done), flush=True)


# Not a daemon thread: teardown waits for it, as mod_wsgi applications' do.
worker = threading.Thread(target=work, name="jobs")


@app.route("/")
def index() -> dict:
    jobs.put("job")
    return {"worker": vigil.worker, "done": len(done)}


def on_shutdown(event: str, reason: str, teardown: str, deadline: float) -> None:
    print("shutdown handler: reason=%s teardown=%s" % (reason, teardown), flush=True)
    stop.set()
    worker.join(deadline)  # bounded: vigil kills the worker at its deadline anyway


vigil.subscribe_shutdown(on_shutdown)
worker.start()

sockets = vigil.listen_sockets()
if "http" in sockets:
    host, port = sockets["http"].getsockname()[:2]
    server = make_server(host, port, app, threaded=True, fd=sockets["http"].fileno())
else:  # not under vigil: a port of its own
    server = make_server("127.0.0.1", 8083, app, threaded=True)
vigil.ready()
# On a destroy teardown vigil ends this call with SystemExit, and the
# interpreter's teardown (the jobs thread is already gone) is measured.
server.serve_forever()
