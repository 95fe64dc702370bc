"""Watches processes that are not our children, without polling them.

    python3 pidwatch.py

Reads commands on stdin, one JSON object per line, and answers on stdout with
one JSON object per line; every time is CLOCK_MONOTONIC in nanoseconds (the
clock Node's process.hrtime.bigint() reads), so the bench can compare them.

  {"cmd":"all_dead","id":ID,"pids":[...]}
      answers {"id":ID,"armed":true} once every pidfd is open, then
      {"id":ID,"all_dead_ns":T,"missing":[...]} when the last one has exited
      (pidfd readable: the moment the kernel notifies the parent).
  {"cmd":"replaced","id":ID,"pid":P,"parent":PP,"timeout_ms":MS}
      answers {"id":ID,"armed":true}, then when P exits
      {"id":ID,"exit_ns":T1,"spawn_ns":T2,"new_pid":N} where T2 is when a
      child of PP that was not one when armed shows in
      /proc/PP/task/PP/children (polled every 0.5 ms from the exit on, for
      at most timeout_ms); new_pid is null when none came.

A pid already gone when armed counts as exited at arming time ("missing").
"""
import json
import os
import select
import sys
import threading
import time

_out_lock = threading.Lock()


def say(obj):
    line = json.dumps(obj) + "\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def open_pidfd(pid):
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        return data[data.rindex(")") + 2] in "ZX"
    except (OSError, ValueError):
        return True


def all_dead(req):
    poller = select.poll()
    fds = {}
    missing = []
    for pid in req["pids"]:
        fd = open_pidfd(pid)
        if fd is None:
            missing.append(pid)
        else:
            fds[fd] = pid
            poller.register(fd, select.POLLIN)
    say({"id": req["id"], "armed": True})
    last = time.monotonic_ns()
    while fds:
        for fd, _ in poller.poll():
            last = time.monotonic_ns()
            poller.unregister(fd)
            os.close(fd)
            del fds[fd]
    say({"id": req["id"], "all_dead_ns": last, "missing": missing})


def children(ppid):
    try:
        with open("/proc/%d/task/%d/children" % (ppid, ppid)) as f:
            return set(int(x) for x in f.read().split())
    except OSError:
        return set()


def replaced(req):
    pid, parent = req["pid"], req["parent"]
    fd = open_pidfd(pid)
    before = children(parent) - {pid}
    say({"id": req["id"], "armed": True})
    if fd is not None:
        select.select([fd], [], [])
        os.close(fd)
    exit_ns = time.monotonic_ns()
    until = exit_ns + req.get("timeout_ms", 5000) * 1_000_000
    new_pid = None
    spawn_ns = None
    while time.monotonic_ns() < until:
        now_children = children(parent) - before - {pid}
        if now_children:
            spawn_ns = time.monotonic_ns()
            new_pid = min(now_children)
            break
        time.sleep(0.0005)
    say({"id": req["id"], "exit_ns": exit_ns, "spawn_ns": spawn_ns, "new_pid": new_pid})


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        target = {"all_dead": all_dead, "replaced": replaced}[req["cmd"]]
        threading.Thread(target=target, args=(req,), daemon=True).start()


main()
