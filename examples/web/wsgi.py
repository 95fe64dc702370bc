"""The WSGI app `make run` serves with gunicorn on vigil's socket `web`
(127.0.0.1:8080). gunicorn takes the socket from LISTEN_FDS, as under
systemd socket activation: it binds nothing itself, and restarts of its
instances lose no request (connections wait in vigil's socket)."""
import os


def app(environ, start_response):
    body = f"hello from gunicorn pid {os.getpid()} (vigil worker {os.environ.get('VIGIL_WORKER')})\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]
