"""Binds HOST:PORT with SO_REUSEPORT, then execs COMMAND with the socket on fd 3.

    python3 reuseport.py HOST PORT COMMAND [ARG...]

The bench's "no supervisor" web server: each instance binds its own socket in
the kernel's SO_REUSEPORT group (one accept queue per instance, as
`gunicorn --reuse-port` does), then becomes the same server program that runs
under vigil, handed its socket by sd_listen_fds(3)'s rules (LISTEN_FDS=1,
LISTEN_PID = this pid, which exec keeps). Only the socket differs. Node 20's
net module cannot set SO_REUSEPORT itself.
"""
import os
import socket
import sys

host, port, command = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
sock.bind((host, port))
sock.listen(512)
if sock.fileno() != 3:
    os.dup2(sock.fileno(), 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_FDNAMES="http", LISTEN_PID=str(os.getpid()))
os.execvp(command[0], command)
