"""An ASGI application under uvicorn, supervised by vigil, with an asyncio
shutdown handler.

uvicorn takes vigil's socket with ``--fd 3`` (the first of a program's
``sockets:``), so a worker that restarts leaves the connections waiting in
the shared accept queue. The handler is a coroutine function: subscribed from
the lifespan startup, it runs on uvicorn's own event loop, where it can await
the application's tasks, within ``handlers_timeout`` (past it, vigil cancels
it and goes on).

    # /etc/vigil/vigil.yaml
    sockets:
      http: { listen: 127.0.0.1:8082 }
    programs:
      asgi:
        command: [/srv/app/.venv/bin/python, -m, uvicorn, --fd, "3", --app-dir, /srv/app, asgi_app:app]
        protocol: on
        sockets: [http]
        shutdown: { handlers_timeout: 5s, timeout: 10s }
"""
import asyncio
import threading

import vigil

ticks = 0


async def tick(stop: asyncio.Event) -> None:
    global ticks
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 0.1)
        except asyncio.TimeoutError:
            ticks += 1
    print("ticker stopped after %d ticks" % ticks, flush=True)


async def lifespan(receive, send) -> None:
    await receive()  # lifespan.startup
    stop = asyncio.Event()
    ticker = asyncio.create_task(tick(stop))

    async def on_shutdown(event: str, reason: str, teardown: str, deadline: float) -> None:
        print("shutdown handler on the event loop (thread %s): reason=%s"
              % (threading.current_thread().name, reason), flush=True)
        stop.set()
        await ticker  # the application's own tasks end before teardown

    vigil.subscribe_shutdown(on_shutdown)  # the loop running now is the one it runs on
    await send({"type": "lifespan.startup.complete"})
    vigil.ready()
    await receive()  # lifespan.shutdown
    await send({"type": "lifespan.shutdown.complete"})


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ticks %d\n" % ticks})
