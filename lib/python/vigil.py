"""Python client of the vigil worker protocol (lib/protocol/README.md).

    import vigil

    def on_stop(event, **kwargs):      # as mod_wsgi's process_stopping event
        # kwargs: reason, teardown ("destroy"/"skip"),
        #         deadline (seconds left before vigild SIGKILLs the worker)
        stop_background_threads()

    vigil.subscribe_shutdown(on_stop)
    vigil.ready()
    vigil.status("serving on :8000")

Importing the module attaches the worker when vigild started it (VIGIL_FD is
set): it says hello, writes heartbeats from a daemon thread, reads the socket
from another, and registers faulthandler on SIGUSR2. Outside vigil every call
is a harmless no-op, so an application runs unchanged without a supervisor.

On a destroy teardown the main thread is made to leave with SystemExit(0)
through a SIGTERM handler installed at import, so the interpreter's own
teardown (non-daemon threads, atexit) runs and vigild measures it. That
handler is only installed when vigil is imported from the main thread and
SIGTERM still has its default action; otherwise the client falls back to
_thread.interrupt_main(), i.e. KeyboardInterrupt (or the application's SIGINT
handler), which a main thread blocked in a C call (time.sleep, accept) only
sees once that call returns.

Standard library only; Python 3.9 or later.
"""

import _thread
import faulthandler
import json
import os
import signal
import socket
import stat
import struct
import sys
import threading
import time
import traceback

__all__ = ["ready", "status", "subscribe_shutdown", "attached", "program", "worker"]
__version__ = "0.1.0"

MAX_MESSAGE_BYTES = 64 * 1024
MAX_STATUS_CHARS = 1024
EXIT_SUPERVISOR_GONE = 70
TEARDOWN_MODES = ("destroy", "skip")


def _int_env(name):
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return None


#: True while this process speaks the protocol to vigild.
attached = False
#: The program's name and this worker's instance number, when run by vigil
#: (also set for programs with ``protocol: off``).
program = os.environ.get("VIGIL_PROGRAM")
worker = _int_env("VIGIL_WORKER")

_sock = None
_heartbeat_fd = None
_send_lock = threading.Lock()  # lines from several threads must not interleave
_stop_beating = threading.Event()  # only ever set to stop beats from outside (tests)
_handlers = []
_shutdown_started = False


def ready():
    """Tell vigild the worker can do its job."""
    _send({"type": "ready"})


def status(text):
    """Set the free text shown by ``vigilctl status``."""
    _send({"type": "status", "text": str(text)[:MAX_STATUS_CHARS]})


def subscribe_shutdown(handler):
    """Call ``handler("process_stopping", reason=, teardown=, deadline=)`` on shutdown.

    Handlers run in subscription order in one thread, and together get at
    most the program's handlers_timeout; then teardown goes on without them.
    """
    if not callable(handler):
        raise TypeError("vigil.subscribe_shutdown() needs a callable")
    _handlers.append(handler)


def _warn(text):
    # os.write, not sys.stderr: this must work from any thread whatever state
    # the application left sys.stderr in.
    try:
        os.write(2, ("vigil: %s\n" % text).encode("utf-8", "replace"))
    except OSError:
        pass


def _send(message):
    sock = _sock
    if sock is None:
        return
    data = (json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8")
    with _send_lock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # vigild is gone; the reader sees end of file and exits


def _flush_std_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _heartbeat_loop(fd, offset, interval):
    # Event.wait releases the GIL while it waits, so this thread beats on while
    # the main thread is blocked in Python or in I/O, and stops only when some
    # code holds the GIL without letting go: exactly the hang vigild looks for.
    while True:
        try:
            os.pwrite(fd, struct.pack("<Q", time.monotonic_ns()), offset)
        except OSError as error:
            _warn("heartbeat write failed, heartbeats stop: %s" % error)
            return
        if _stop_beating.wait(interval):
            return


def _supervisor_gone():
    _flush_std_streams()
    _warn("supervisor gone, exiting")
    os._exit(EXIT_SUPERVISOR_GONE)


def _reader_loop(sock):
    pending = bytearray()
    discarding = False  # inside an over-long line: drop bytes up to its newline
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            _supervisor_gone()
        pending += chunk
        while True:
            nl = pending.find(b"\n")
            if nl < 0:
                if len(pending) >= MAX_MESSAGE_BYTES:
                    if not discarding:
                        _warn("ignoring an over-long line from vigild")
                    discarding = True
                    pending.clear()
                break
            line = bytes(pending[:nl])
            del pending[: nl + 1]
            if discarding:
                discarding = False
            else:
                _handle_line(line)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _handle_line(line):
    global _shutdown_started
    try:
        message = json.loads(line.decode("utf-8"))
    except ValueError:
        message = None
    if not isinstance(message, dict):
        _warn("ignoring a line from vigild that is not a JSON object")
        return
    if message.get("type") != "shutdown":
        _warn("ignoring a message of unknown type %.40r from vigild" % (message.get("type"),))
        return
    teardown = message.get("teardown")
    timeout_ms = message.get("handlers_timeout_ms")
    deadline_ms = message.get("deadline_ms")
    if teardown not in TEARDOWN_MODES or not _is_number(timeout_ms) or not _is_number(deadline_ms):
        _warn("ignoring a malformed shutdown message: %.200s" % line.decode("utf-8", "replace"))
        return
    if _shutdown_started:
        return
    _shutdown_started = True
    received = time.monotonic()
    # A thread of its own, so this one keeps reading and still notices at once
    # if vigild goes away while the handlers run.
    threading.Thread(
        target=_shut_down,
        args=(str(message.get("reason")), teardown, received + timeout_ms / 1000.0,
              received + deadline_ms / 1000.0),
        name="vigil-shutdown",
        daemon=True,
    ).start()


def _run_handlers(reason, teardown, deadline_at):
    for handler in list(_handlers):
        try:
            handler("process_stopping", reason=reason, teardown=teardown,
                    deadline=max(0.0, deadline_at - time.monotonic()))
        except BaseException:
            _warn("shutdown handler %r failed:" % (handler,))
            traceback.print_exc()


def _shut_down(reason, teardown, handlers_until, deadline_at):
    # Daemon thread: a handler that never returns must not hold up teardown.
    runner = threading.Thread(target=_run_handlers, args=(reason, teardown, deadline_at),
                              name="vigil-handlers", daemon=True)
    runner.start()
    runner.join(max(0.0, handlers_until - time.monotonic()))
    _send({"type": "handlers-done", "timed_out": runner.is_alive()})
    if teardown == "skip":
        _flush_std_streams()
        os._exit(0)  # skip means no interpreter teardown: no atexit, no thread joins
    _send({"type": "teardown"})
    _leave_main_thread()


def _on_sigterm(signum, frame):
    raise SystemExit(0)


def _leave_main_thread():
    main = threading.main_thread()
    if not main.is_alive():
        return  # main already returned: the interpreter is in its teardown
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:
        # A signal aimed at the main thread also interrupts a blocking call
        # there (sleep, select, lock wait), so SystemExit is raised at once.
        signal.pthread_kill(main.ident, signal.SIGTERM)
    else:
        _thread.interrupt_main()


def _after_fork_in_child():
    # A forked child has neither of our threads and is not the worker vigild
    # knows: it must not speak for its parent, nor keep the descriptors.
    global attached, _sock, _heartbeat_fd
    attached = False
    sock, _sock = _sock, None
    if sock is not None:
        sock.close()  # close, not shutdown: the parent's end stays connected
    if _heartbeat_fd is not None:
        try:
            os.close(_heartbeat_fd)
        except OSError:
            pass
        _heartbeat_fd = None


def _attach():
    global attached, _sock, _heartbeat_fd
    fd = _int_env("VIGIL_FD")
    if fd is None:
        return
    try:
        is_socket = stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        is_socket = False
    if not is_socket:
        _warn("VIGIL_FD=%s is not an open socket, running unsupervised" % os.environ["VIGIL_FD"])
        return
    # Only this process is the worker: children must neither inherit the
    # descriptors nor be told about them, or a child importing vigil would
    # take whatever its own fd 3 is for vigild's socket.
    hb_fd = _int_env("VIGIL_HEARTBEAT_FD")
    hb_slot = _int_env("VIGIL_HEARTBEAT_SLOT")
    hb_interval_ms = _int_env("VIGIL_HEARTBEAT_INTERVAL_MS") or 1000
    for name in ("VIGIL_FD", "VIGIL_HEARTBEAT_FD", "VIGIL_HEARTBEAT_SLOT",
                 "VIGIL_HEARTBEAT_INTERVAL_MS"):
        os.environ.pop(name, None)
    os.set_inheritable(fd, False)
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)  # libuv may hand it over non-blocking
    _sock = sock
    attached = True
    os.register_at_fork(after_in_child=_after_fork_in_child)
    _send({"type": "hello", "client": "python", "version": __version__})

    if hb_fd is not None and hb_slot is not None and hb_slot >= 0:
        try:
            os.set_inheritable(hb_fd, False)
            os.pwrite(hb_fd, struct.pack("<Q", time.monotonic_ns()), 8 * hb_slot)
        except OSError as error:
            _warn("cannot write heartbeats to VIGIL_HEARTBEAT_FD: %s" % error)
        else:
            _heartbeat_fd = hb_fd
            threading.Thread(target=_heartbeat_loop,
                             args=(hb_fd, 8 * hb_slot, max(hb_interval_ms, 1) / 1000.0),
                             name="vigil-heartbeat", daemon=True).start()

    threading.Thread(target=_reader_loop, args=(sock,), name="vigil-reader",
                     daemon=True).start()

    try:
        # Keep an application's own SIGUSR2 handler working behind the dump;
        # chaining to the default action would kill the worker instead.
        chain = callable(signal.getsignal(signal.SIGUSR2))
        faulthandler.register(signal.SIGUSR2, file=sys.stderr, all_threads=True, chain=chain)
    except (AttributeError, ValueError, OSError, RuntimeError) as error:
        _warn("no stack dumps on SIGUSR2: %s" % error)

    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL):
        signal.signal(signal.SIGTERM, _on_sigterm)


_attach()
