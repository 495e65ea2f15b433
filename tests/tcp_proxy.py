"""A TCP proxy between the app and PostgreSQL or Redis, to cut the dependency away and bring it back.

It runs its own event loop in a thread (the app under test runs in another), so a test can block and
unblock it from anywhere. Blocking closes every open connection and refuses new ones, as a crashed or
unreachable server would; hanging keeps connections open and accepts new ones but delivers nothing, as a
server that stopped answering (or a network that drops packets) would.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

# PostgreSQL's socket file in a directory given as `?host=`, as libpq and the embedded server name it.
_PG_SOCKET = ".s.PGSQL.{port}"


class TcpProxy:
    """Listens on 127.0.0.1; forwards to a host and port, or to a Unix socket (embedded servers)."""

    def __init__(self, target_host: str | None, target_port: int | None, socket_path: str | None) -> None:
        self._target = (target_host, target_port)
        self._socket_path = socket_path
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self._blocked = False
        self._hanging = False
        self.port = 0

    def start(self) -> TcpProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self.block()
        asyncio.run_coroutine_threadsafe(self._shut_down(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _shut_down(self) -> None:
        # Every connection's task ends here: a task left pending when the loop goes would be reported
        # ("Task was destroyed but it is pending!") in whichever later test collects it.
        self._server.close()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def block(self) -> None:
        """Cut every open connection and refuse new ones until `unblock`."""
        asyncio.run_coroutine_threadsafe(self._set_blocked(True), self._loop).result(10)

    def unblock(self) -> None:
        asyncio.run_coroutine_threadsafe(self._set_blocked(False), self._loop).result(10)

    def hang(self, hanging: bool = True) -> None:
        """Drop every byte either way (from now until `hang(False)`), connections left open."""
        self._hanging = hanging

    def url_through(self, url: str) -> str:
        """`url` leading to this proxy: its host and port (or socket) replaced by 127.0.0.1 and our port."""
        parts = urlsplit(url)
        if parts.scheme == "unix":  # redis over a socket
            return f"redis://127.0.0.1:{self.port}/0"
        userinfo = parts.netloc.rpartition("@")[0]
        query = {k: v for k, v in parse_qs(parts.query).items() if k != "host"}
        netloc = (userinfo + "@" if userinfo else "") + f"127.0.0.1:{self.port}"
        return parts._replace(netloc=netloc, query=urlencode(query, doseq=True)).geturl()

    async def _set_blocked(self, blocked: bool) -> None:
        self._blocked = blocked
        if blocked:
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._blocked:
            writer.transport.abort()
            return
        try:
            if self._socket_path is not None:
                upstream_reader, upstream_writer = await asyncio.open_unix_connection(self._socket_path)
            else:
                upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        if self._blocked:  # blocked while this connection was being made: cut it like the others
            writer.transport.abort()
            upstream_writer.transport.abort()
            return
        self._writers.update({writer, upstream_writer})
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self._hanging:
                    continue
                writer.write(data)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()


@contextlib.contextmanager
def proxy_to(url: str) -> Iterator[TcpProxy]:
    """A proxy to the server of a PostgreSQL or Redis URL, over TCP or a Unix socket."""
    parts = urlsplit(url)
    socket_dir = parse_qs(parts.query).get("host", [None])[0]
    if parts.scheme == "unix":
        proxy = TcpProxy(None, None, parts.path)
    elif socket_dir is not None:
        proxy = TcpProxy(None, None, str(Path(socket_dir) / _PG_SOCKET.format(port=parts.port or 5432)))
    else:
        proxy = TcpProxy(parts.hostname, parts.port, None)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
