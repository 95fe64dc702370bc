"""A Python worker under vigil: says ready, reports status, and stops its
background thread from a shutdown handler, so interpreter teardown is quick."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib", "python"))
import vigil  # noqa: E402

stop = threading.Event()


def background():
    # A non-daemon thread: without the handler below, Python 3.9+ would wait
    # for it forever at exit (the mod_wsgi 4.9.1 case).
    while not stop.wait(1.0):
        pass


def on_shutdown(event, **kwargs):
    print(f"shutting down: {event} reason={kwargs.get('reason')}", flush=True)
    stop.set()


threading.Thread(target=background, name="background").start()
vigil.subscribe_shutdown(on_shutdown)
vigil.ready()
print(f"py-app worker {vigil.worker} ready, pid {os.getpid()}", flush=True)
n = 0
while True:
    time.sleep(5)
    n += 1
    vigil.status(f"served {n} ticks")
