"""Push for the embedded demo: `serve` runs the worker, and (without FCM credentials) a local FCM-compatible
server, in its own process, so a campaign scheduled in the demo is delivered offline.

A deployment runs `tsunagari worker` separately instead (any number of them).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
import uvicorn

from commands.worker import run_worker
from domain.clock import SystemClock
from infra.settings import Settings
from push.fcm_local import create_local_fcm

START_TIMEOUT_S = 30


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def local_fcm_server(host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """The local FCM server on a thread of this process; yields its URL once it listens."""
    port = port or _free_port(host)
    server = uvicorn.Server(
        uvicorn.Config(create_local_fcm(), host=host, port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, name="local-fcm", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the local FCM server did not start")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class _WorkerThread:
    """`run_worker` on its own event loop and thread, stopped like `tsunagari worker` on SIGTERM."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="worker", daemon=True)

    async def _run(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._started.set()
        await run_worker(self._settings, SystemClock(), self._stop)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(START_TIMEOUT_S)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


@contextmanager
def embedded_push(settings: Settings) -> Iterator[Settings]:
    """Run the worker (and a local FCM server when no FCM is configured) while the block runs; yields
    the settings the API should use (they name the local server)."""
    with _fcm_for_demo(settings) as ready:
        worker = _WorkerThread(ready)
        worker.start()
        try:
            yield ready
        finally:
            worker.stop()


@contextmanager
def _fcm_for_demo(settings: Settings) -> Iterator[Settings]:
    """The settings as they are when FCM is configured, else pointing at a local FCM server."""
    if settings.fcm_credentials is not None or settings.fcm_url is not None:
        yield settings
        return
    with local_fcm_server() as url:
        print(f"Push messages go to a local FCM server: {url}/_local/messages", flush=True)
        yield msgspec.structs.replace(settings, fcm_url=url)
