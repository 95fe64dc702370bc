"""The floor's log reader: counts the lines on stdin, nothing else.

    python3 count_lines.py COUNT_FILE

Every 0.1 s or so (when data comes) and at EOF it writes the count so far to
COUNT_FILE (fixed width, at offset 0).
"""
import os
import sys
import time

fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
n = 0
last = time.monotonic()
while True:
    chunk = os.read(0, 1 << 20)
    if not chunk:
        break
    n += chunk.count(b"\n")
    now = time.monotonic()
    if now - last >= 0.1:
        os.pwrite(fd, b"%20d\n" % n, 0)
        last = now
os.pwrite(fd, b"%20d\n" % n, 0)
