"""Python client of the vigil worker protocol (lib/protocol/README.md).

    import vigil

    def on_stop(event, **kwargs):      # as mod_wsgi's process_stopping event
        # kwargs: reason, teardown ("destroy"/"skip"),
        #         deadline (seconds left before vigild SIGKILLs the worker)
        stop_background_threads()

    vigil.subscribe_shutdown(on_stop)
    vigil.ready()
    vigil.status("serving on :8000")

A coroutine function is a handler too: it runs on the application's event
loop (the one running when it was subscribed, or ``loop=``), under the same
handlers_timeout.

Importing the module attaches the worker when vigild started it (VIGIL_FD is
set): it says hello, writes heartbeats from a daemon thread, reads the socket
from another, and registers faulthandler on SIGUSR2. Outside vigil every call
is a harmless no-op, so an application runs unchanged without a supervisor.

On a destroy teardown the main thread is made to leave with SystemExit(0)
through a SIGTERM handler installed at import, so the interpreter's own
teardown (non-daemon threads, atexit) runs and vigild measures it. Any other
SIGTERM (kill, systemd, a plain `shutdown.signal`) keeps its default meaning:
the worker dies by the signal, so `restart: on-failure` sees a killed worker.
That handler is only installed when vigil is imported from the main thread
and SIGTERM still has its default action; otherwise the client falls back to
_thread.interrupt_main(), i.e. KeyboardInterrupt (or the application's SIGINT
handler), which a main thread blocked in a C call (time.sleep, accept) only
sees once that call returns.

Messages to vigild never block the calling thread: a message the socket
cannot take at once waits in memory for a writer thread (only the latest
status is kept), and a stall is reported once on stderr.

listen_sockets() returns the listening sockets passed by sd_listen_fds(3)'s
rules, whether vigild or systemd passed them.

Standard library only; Python 3.9 or later.
"""

from __future__ import annotations

import _thread
import atexit
import faulthandler
import json
import os
import select
import signal
import socket
import stat
import struct
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

if TYPE_CHECKING:  # asyncio is imported only when an application uses it
    import asyncio
    import concurrent.futures

__all__ = ["ready", "status", "subscribe_shutdown", "listen_sockets", "attached", "program", "worker"]
__version__ = "0.1.0"

MAX_MESSAGE_BYTES = 64 * 1024
MAX_STATUS_CHARS = 1024
EXIT_SUPERVISOR_GONE = 70
TEARDOWN_MODES = ("destroy", "skip")
#: sd_listen_fds(3): the first passed socket is fd 3.
SD_LISTEN_FDS_START = 3
LISTEN_ENV = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
#: systemd's name for a socket without FileDescriptorName=.
DEFAULT_SOCKET_NAME = "unknown"
#: After this long without vigild reading its socket, say so once on stderr.
SEND_STALL_WARN_S = 1.0
#: At interpreter exit, wait at most this long for messages not yet sent.
EXIT_FLUSH_S = 1.0

#: ``handler("process_stopping", reason=, teardown=, deadline=)``: a function,
#: or a coroutine function (``async def``) run on the application's event loop.
ShutdownHandler = Callable[..., Any]


def _int_env(name: str) -> Optional[int]:
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

_sock: Optional[socket.socket] = None
_heartbeat_fd: Optional[int] = None
# Guards the outbox and the direct send, so lines from several threads never
# interleave. Held only for non-blocking work: no application thread waits
# on vigild through it.
_send_lock = threading.Lock()
_outbox_changed = threading.Condition(_send_lock)
# Lines the socket could not take at once, for the writer thread: (type, bytes);
# type "" marks the tail of a line already partly sent, which must go first.
_outbox: List[Tuple[str, bytes]] = []
_writer_busy = False
_send_failed = False
_stall_warned = False
_ready_lock = threading.Lock()
_ready_sent = False
_stop_beating = threading.Event()  # only ever set to stop beats from outside (tests)
# (handler, the event loop it runs on or None for the handlers thread)
_handlers: List[Tuple[ShutdownHandler, "Optional[asyncio.AbstractEventLoop]"]] = []
# The loop call the handlers thread waits for and its handler, so a timeout
# can cancel it and name it (one tuple: read together, never half-updated).
_waiting_on: "Optional[Tuple[concurrent.futures.Future[None], ShutdownHandler]]" = None
# Set at handlers_timeout: the handlers not begun by then are not run.
_handlers_over = False
_shutdown_started = False
_listen_lock = threading.Lock()
_listened: Optional[Dict[str, socket.socket]] = None


def ready() -> None:
    """Tell vigild the worker can do its job.

    Sent once: later calls do nothing. Outside vigil, a no-op.
    """
    global _ready_sent
    with _ready_lock:
        if _ready_sent:
            return
        _ready_sent = True
    _send({"type": "ready"})


def status(text: str) -> None:
    """Set the free text shown by ``vigilctl status`` (at most 1024 characters).

    Never blocks: while vigild does not read, only the latest text is kept.
    Outside vigil, a no-op.
    """
    _send({"type": "status", "text": str(text)[:MAX_STATUS_CHARS]})


def subscribe_shutdown(handler: ShutdownHandler, *,
                       loop: "Optional[asyncio.AbstractEventLoop]" = None) -> None:
    """Call ``handler("process_stopping", reason=, teardown=, deadline=)`` on shutdown.

    Handlers run in subscription order, one after the other, and together get
    at most the program's handlers_timeout; then teardown goes on without
    them. A handler that raises is reported with its traceback on stderr and
    the next one still runs. Outside vigil the handler is kept but never called.

    A plain function runs in a thread of the client's. A coroutine function
    (``async def``) runs on an event loop: ``loop`` when given, else the loop
    running in the calling thread, so subscribe it from inside that loop (in
    ``main()``, an ASGI lifespan startup); with neither, this raises
    RuntimeError. A plain function given ``loop=`` runs on that loop too. If
    handlers_timeout passes while a handler runs on a loop, its task is
    cancelled; a loop that is no longer running when the shutdown comes is
    reported and its handler skipped.
    """
    if not callable(handler):
        raise TypeError("vigil.subscribe_shutdown() needs a callable")
    if loop is None and _is_coroutine_function(handler):
        import asyncio
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "vigil.subscribe_shutdown(%r): a coroutine function needs an event loop: subscribe it "
                "from inside the running loop, or pass loop=" % (handler,)) from None
    _handlers.append((handler, loop))


def _is_coroutine_function(handler: object) -> bool:
    # inspect's own test, without importing inspect for every worker.
    import functools
    while isinstance(handler, functools.partial):
        handler = handler.func
    function = getattr(handler, "__func__", handler)  # bound methods
    code = getattr(function, "__code__", None)
    if code is None:
        call = getattr(type(handler), "__call__", None)
        code = getattr(call, "__code__", None)
    CO_COROUTINE = 0x80
    return code is not None and bool(code.co_flags & CO_COROUTINE)


def listen_sockets() -> Dict[str, socket.socket]:
    """The listening sockets passed by sd_listen_fds(3)'s rules, by name.

    vigild (a program's ``sockets:``) and systemd socket activation pass them
    alike: fds 3, 4, ... with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID; this
    works with or without vigild. They are only this process's when
    LISTEN_PID is its pid: otherwise, or without LISTEN_FDS, the result is
    empty. A socket without a name is ``"unknown"`` (systemd's default); a
    name that repeats gets ``:2``, ``:3``, ... from its second socket on (a
    name can hold no ``:``, so no real name is shadowed), and the dict keeps
    the fds' order. A descriptor that is not a socket is skipped with a line
    on stderr.

    The first call takes the descriptors: it sets close-on-exec on them and
    removes LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from os.environ, so
    child processes neither inherit nor mistake them. Later calls return the
    same socket objects (a forked child keeps them too). The sockets are
    shared with the other instances, so their blocking mode is left as it
    was passed; the objects report it (getblocking()).
    """
    global _listened
    with _listen_lock:
        if _listened is None:
            _listened = _take_listen_fds()
        return dict(_listened)


def _take_listen_fds() -> Dict[str, socket.socket]:
    pid_text, count_text, names_text = (os.environ.get(name) for name in LISTEN_ENV)
    for name in LISTEN_ENV:
        os.environ.pop(name, None)
    if pid_text is None or count_text is None:
        return {}
    try:
        pid, count = int(pid_text), int(count_text)
    except ValueError:
        _warn("LISTEN_PID=%.40r LISTEN_FDS=%.40r are not numbers, ignoring them" % (pid_text, count_text))
        return {}
    if pid != os.getpid() or count == 0:
        return {}
    if count < 0:
        _warn("LISTEN_FDS=%d is negative, ignoring it" % count)
        return {}
    fds = range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count)
    for fd in fds:
        try:
            os.set_inheritable(fd, False)
        except OSError as error:
            _warn("LISTEN_FDS=%d but fd %d: %s, ignoring the sockets" % (count, fd, error.strerror))
            return {}
    names = names_text.split(":") if names_text else []
    if not names:
        names = [DEFAULT_SOCKET_NAME] * count
    elif len(names) != count:
        _warn("LISTEN_FDNAMES has %d names for LISTEN_FDS=%d, ignoring the sockets" % (len(names), count))
        return {}
    result: Dict[str, socket.socket] = {}
    seen: Dict[str, int] = {}
    for fd, name in zip(fds, names):
        try:
            sock = socket.socket(fileno=fd)
        except OSError as error:
            _warn("listening fd %d (%s) is not a socket (%s), skipping it" % (fd, name, error.strerror))
            continue
        if not os.get_blocking(fd):
            # The object assumes blocking; make it say what the kernel does
            # (O_NONBLOCK is already set: this changes nothing for others).
            sock.setblocking(False)
        seen[name] = seen.get(name, 0) + 1
        result[name if seen[name] == 1 else "%s:%d" % (name, seen[name])] = sock
    return result


def _warn(text: str) -> None:
    # os.write, not sys.stderr: this must work from any thread whatever state
    # the application left sys.stderr in.
    try:
        os.write(2, ("vigil: %s\n" % text).encode("utf-8", "replace"))
    except OSError:
        pass


def _send(message: dict) -> None:
    """Sends at once if the socket takes the line, else leaves it to the writer thread."""
    global _send_failed
    sock = _sock
    if sock is None:
        return
    kind = message["type"]
    line = (json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8")
    with _send_lock:
        if _send_failed:
            return
        if _outbox or _writer_busy:
            _enqueue(kind, line)
            return
        try:
            sent = sock.send(line, socket.MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
        except OSError:
            _send_failed = True  # vigild is gone; the reader sees end of file and exits
            return
        if sent < len(line):
            _enqueue("" if sent else kind, line[sent:])


def _enqueue(kind: str, line: bytes) -> None:
    # Called with _send_lock held. Statuses replace each other: while vigild
    # does not read, memory stays bounded and it gets the latest text.
    if kind == "status":
        for index, (queued, _) in enumerate(_outbox):
            if queued == "status":
                _outbox[index] = (kind, line)
                return
    _outbox.append((kind, line))
    _outbox_changed.notify_all()


def _writer_loop(sock: socket.socket) -> None:
    global _writer_busy, _send_failed
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    while True:
        with _send_lock:
            while not _outbox:
                _outbox_changed.wait()
            data = b"".join(line for _, line in _outbox)
            _outbox.clear()
            _writer_busy = True
        written = _write_all(sock, poller, data)
        with _send_lock:
            _writer_busy = False
            if not written:
                _send_failed = True
                _outbox.clear()
            _outbox_changed.notify_all()
        if not written:
            return


def _write_all(sock: socket.socket, poller: select.poll, data: bytes) -> bool:
    global _stall_warned
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view, socket.MSG_DONTWAIT):]
            continue
        except BlockingIOError:
            pass
        except OSError:
            return False
        if _stall_warned:
            poller.poll()
        elif not poller.poll(int(SEND_STALL_WARN_S * 1000)):
            _stall_warned = True
            _warn("vigild has not read its socket for %.0f s; messages wait in memory"
                  " (only the latest status is kept)" % SEND_STALL_WARN_S)
    return True


def _flush(timeout: float) -> bool:
    """Waits at most ``timeout`` seconds for the writer thread to send everything."""
    if _sock is None:
        return True
    deadline = time.monotonic() + timeout
    with _send_lock:
        while (_outbox or _writer_busy) and not _send_failed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _outbox_changed.wait(left)
    return True


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _heartbeat_loop(fd: int, offset: int, interval: float) -> None:
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


def _supervisor_gone() -> None:
    _flush_std_streams()
    _warn("supervisor gone, exiting")
    os._exit(EXIT_SUPERVISOR_GONE)


def _reader_loop(sock: socket.socket) -> None:
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


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _handle_line(line: bytes) -> None:
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


def _run_handlers(reason: str, teardown: str, deadline_at: float) -> None:
    global _waiting_on
    for handler, loop in list(_handlers):
        if _handlers_over:
            return
        kwargs = {"reason": reason, "teardown": teardown,
                  "deadline": max(0.0, deadline_at - time.monotonic())}
        try:
            if loop is None:
                result = handler("process_stopping", **kwargs)
                if type(result).__name__ == "coroutine":
                    result.close()  # never awaited: say so rather than warn at exit
                    _warn("shutdown handler %r returned a coroutine: subscribe the coroutine function "
                          "itself (or pass loop=) so that it runs on an event loop" % (handler,))
                continue
            if loop.is_closed() or not loop.is_running():
                _warn("shutdown handler %r not run: its event loop is no longer running" % (handler,))
                continue
            import asyncio
            future = asyncio.run_coroutine_threadsafe(_on_loop(handler, kwargs), loop)
            _waiting_on = (future, handler)
            future.result()
        except BaseException:
            if _handlers_over and _waiting_on is not None and _waiting_on[0].cancelled():
                pass  # said by _shut_down, which cancelled it: this thread may not get to run again
            else:
                _warn("shutdown handler %r failed:\n%s" % (handler, traceback.format_exc().rstrip("\n")))
        finally:
            _waiting_on = None


async def _on_loop(handler: ShutdownHandler, kwargs: Dict[str, Any]) -> None:
    result = handler("process_stopping", **kwargs)
    if hasattr(result, "__await__"):
        await result


def _shut_down(reason: str, teardown: str, handlers_until: float, deadline_at: float) -> None:
    global _handlers_over
    # Daemon thread: a handler that never returns must not hold up teardown.
    runner = threading.Thread(target=_run_handlers, args=(reason, teardown, deadline_at),
                              name="vigil-handlers", daemon=True)
    runner.start()
    runner.join(max(0.0, handlers_until - time.monotonic()))
    timed_out = runner.is_alive()
    if timed_out:
        _handlers_over = True
        waiting = _waiting_on
        if waiting is not None:
            future, handler = waiting
            future.cancel()  # cancels the handler's task on its loop (thread-safe)
            # Said here: the process may end before the handlers' thread runs again.
            _warn("shutdown handler %r cancelled at handlers_timeout" % (handler,))
    _send({"type": "handlers-done", "timed_out": timed_out})
    if teardown == "skip":
        _flush(max(0.0, deadline_at - time.monotonic()))
        _flush_std_streams()
        os._exit(0)  # skip means no interpreter teardown: no atexit, no thread joins
    _send({"type": "teardown"})
    _flush(max(0.0, deadline_at - time.monotonic()))
    _leave_main_thread()


def _on_sigterm(signum: int, frame: object) -> None:
    if _shutdown_started:
        raise SystemExit(0)  # vigild's stop: leave through the interpreter's teardown
    # Any other SIGTERM keeps its default meaning: die by the signal, so a
    # supervisor sees a killed worker and no `except SystemExit` swallows it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _leave_main_thread() -> None:
    main = threading.main_thread()
    if not main.is_alive():
        return  # main already returned: the interpreter is in its teardown
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:
        # A signal aimed at the main thread also interrupts a blocking call
        # there (sleep, select, lock wait), so SystemExit is raised at once.
        signal.pthread_kill(main.ident, signal.SIGTERM)
    else:
        _thread.interrupt_main()


def _after_fork_in_child() -> None:
    # A forked child has neither of our threads and is not the worker vigild
    # knows: it must not speak for its parent, nor keep the descriptors. The
    # listening sockets stay: pre-fork servers share them on purpose.
    global attached, _sock, _heartbeat_fd, _send_lock, _outbox_changed, _writer_busy
    attached = False
    sock, _sock = _sock, None
    # The parent's writer may have held the lock at the fork.
    _send_lock = threading.Lock()
    _outbox_changed = threading.Condition(_send_lock)
    _outbox.clear()
    _writer_busy = False
    if sock is not None:
        sock.close()  # close, not shutdown: the parent's end stays connected
    if _heartbeat_fd is not None:
        try:
            os.close(_heartbeat_fd)
        except OSError:
            pass
        _heartbeat_fd = None


def _attach() -> None:
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
    # take whatever its own descriptor of that number is for vigild's socket.
    hb_fd = _int_env("VIGIL_HEARTBEAT_FD")
    hb_slot = _int_env("VIGIL_HEARTBEAT_SLOT")
    hb_interval_ms = _int_env("VIGIL_HEARTBEAT_INTERVAL_MS") or 1000
    for name in ("VIGIL_FD", "VIGIL_HEARTBEAT_FD", "VIGIL_HEARTBEAT_SLOT",
                 "VIGIL_HEARTBEAT_INTERVAL_MS"):
        os.environ.pop(name, None)
    os.set_inheritable(fd, False)
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)  # libuv may hand it over non-blocking; sends use MSG_DONTWAIT
    _sock = sock
    attached = True
    os.register_at_fork(after_in_child=_after_fork_in_child)
    threading.Thread(target=_writer_loop, args=(sock,), name="vigil-writer", daemon=True).start()
    # Registered first, so it runs after the application's own atexit functions.
    atexit.register(_flush, EXIT_FLUSH_S)
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
