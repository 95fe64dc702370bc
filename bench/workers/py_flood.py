"""The bench's log flood: prints 100-byte lines as fast as it can, forever.

    FLOOD_COUNT_FILE=/path python3 py_flood.py

stdout is block-buffered (a pipe, a file or a journal stream is not a
terminal), as a program's print() is. Every 0.1 s or so it writes the number of
lines it has printed to $FLOOD_COUNT_FILE (fixed width, at offset 0), so the
bench can read its rate without reading its output. Lines have a fixed size,
so a log file's size tells its line count too.
"""
import os
import sys
import time

path = os.environ.get("FLOOD_COUNT_FILE")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if path else None
LINE = "flood %012d " + "x" * 80 + "\n"
assert len(LINE % 0) == 100
write = sys.stdout.write
n = 0
last = time.monotonic()
try:
    while True:
        for _ in range(1024):
            write(LINE % n)
            n += 1
        now = time.monotonic()
        if fd is not None and now - last >= 0.1:
            os.pwrite(fd, b"%20d\n" % n, 0)
            last = now
except BrokenPipeError:
    pass
