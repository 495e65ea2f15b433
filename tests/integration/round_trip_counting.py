"""Round trips to PostgreSQL per request, counted on the wire (issue 12).

The app under test reaches PostgreSQL through a proxy that reads the protocol its driver sends. Each
simple Query message (BEGIN, COMMIT, ROLLBACK, SET ...) and each Sync message (the end of an extended
protocol exchange: a prepare, a bind and execute, or a pipelined executemany) makes the driver wait
for the server's ReadyForQuery, so together they are exactly the round trips, whoever issued them:
SQLAlchemy, asyncpg called directly, statement preparation, type introspection, or the pool's liveness
check. A request is counted from its first byte until its connection is back in the pool. Tests count
after a warm-up request of the same shape (statements prepared, caches filled), as in steady traffic;
the app has one pooled connection, so the warm-up prepared the statements on the connection counted.

The pool's liveness check on checkout (pre-ping) belongs to the engine's settings, not to a use case:
it is reported apart and left out of the budgets, which hold with or without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import cast

import httpx
from litestar import Litestar
from msgspec.structs import replace

from api.app import create_app
from domain.clock import SettableClock
from infra.settings import Settings
from tests.conftest import serving_asgi
from tests.tcp_proxy import TcpProxy, proxy_to

_STARTUP = 196608  # protocol 3.0: the untyped messages before it are SSL, GSS or cancel requests
_SIMPLE_QUERY, _SYNC, _PARSE, _BIND = b"Q", b"S", b"P", b"B"
_PING = ";"  # what SQLAlchemy's asyncpg dialect sends to check a pooled connection
_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")


class WireLog:
    """The round trips seen, each as the statements it carried (written by the proxy's thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trips: list[list[str]] = []

    def add(self, statements: list[str]) -> None:
        with self._lock:
            self._trips.append(statements)

    def take(self) -> list[list[str]]:
        with self._lock:
            trips, self._trips = self._trips, []
            return trips


class _ClientStream:
    """What one connection's client sends, message by message; logs a round trip at each wait."""

    def __init__(self, log: WireLog) -> None:
        self._log = log
        self._buffer = bytearray()
        self._started = False
        self._statements: dict[bytes, str] = {}  # prepared statement name -> its text
        self._carried: list[str] = []

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if not self._started:  # untyped: length, then a request code
                if len(self._buffer) < 8:
                    return
                length = int.from_bytes(self._buffer[:4])
                if len(self._buffer) < length:
                    return
                self._started = int.from_bytes(self._buffer[4:8]) == _STARTUP
                del self._buffer[:length]
                continue
            if len(self._buffer) < 5:
                return
            end = 1 + int.from_bytes(self._buffer[1:5])
            if len(self._buffer) < end:
                return
            kind, body = bytes(self._buffer[:1]), bytes(self._buffer[5:end])
            del self._buffer[:end]
            self._message(kind, body)

    def _message(self, kind: bytes, body: bytes) -> None:
        if kind == _PARSE:
            name, text = body.split(b"\0")[:2]
            self._statements[name] = text.decode()
            self._carried.append(f"(prepare) {text.decode()}")
        elif kind == _BIND:
            name = body.split(b"\0")[1]
            self._carried.append(self._statements.get(name, "(unknown statement)"))
        elif kind == _SIMPLE_QUERY:
            self._log.add([body.rstrip(b"\0").decode()])
        elif kind == _SYNC:
            self._log.add(self._carried)
            self._carried = []


class _Tapped:
    """A stream reader whose data is also fed to a `_ClientStream` on the way."""

    def __init__(self, reader: asyncio.StreamReader, stream: _ClientStream) -> None:
        self._reader = reader
        self._stream = stream

    async def read(self, n: int) -> bytes:
        data = await self._reader.read(n)
        self._stream.feed(data)
        return data


class CountingProxy(TcpProxy):
    """A proxy that reads what clients send to PostgreSQL (the replies pass through untouched)."""

    def __init__(self, target_port: int, log: WireLog) -> None:
        super().__init__("127.0.0.1", target_port, None)
        self._log = log

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        towards_client = writer.get_extra_info("sockname") == ("127.0.0.1", self.port)
        if not towards_client:
            reader = cast(asyncio.StreamReader, _Tapped(reader, _ClientStream(self._log)))
        await super()._pipe(reader, writer)


@dataclass(frozen=True)
class Trips:
    all: list[list[str]]

    @property
    def pool_checks(self) -> list[int]:
        """Indices of the pool's liveness checks: the ping and the transaction it runs in."""
        indices: list[int] = []
        for i, trip in enumerate(self.all):
            if trip == [_PING] or trip == [f"(prepare) {_PING}"]:
                indices.append(i)
                if i > 0 and _simple(self.all[i - 1]) == "BEGIN":
                    indices.append(i - 1)
                if i + 1 < len(self.all) and _simple(self.all[i + 1]) == "ROLLBACK":
                    indices.append(i + 1)
        return sorted(indices)

    @property
    def own(self) -> list[list[str]]:
        """The request's own round trips (without the pool's liveness checks)."""
        checks = set(self.pool_checks)
        return [trip for i, trip in enumerate(self.all) if i not in checks]

    def transactions(self) -> list[str]:
        """How the request's transactions began and ended, in order (BEGIN, COMMIT, ROLLBACK)."""
        return [word for word in map(_simple, self.own) if word in _TRANSACTION_CONTROL]

    def __str__(self) -> str:
        checks = set(self.pool_checks)
        return "\n".join(
            f"{i + 1:3d}{' (pool check)' if i in checks else ''}: " + " | ".join(trip)[:300]
            for i, trip in enumerate(self.all)
        )


def _simple(trip: list[str]) -> str:
    return trip[0].strip().rstrip(";").upper() if len(trip) == 1 else ""


@dataclass(frozen=True)
class Counted:
    """The app, served through the counting proxy."""

    app: Litestar
    url: str
    log: WireLog

    async def round_trips(
        self, request: Awaitable[httpx.Response], status: int, *, reads_only: bool = False
    ) -> Trips:
        """The round trips of `request`, which must answer `status`; one that only reads runs no
        transaction (api.transactions.ONLY_READS)."""
        self.log.take()
        response = await request
        assert response.status_code == status, response.text
        # The connection goes back to its pool after the response (its reset is counted too).
        db = self.app.state.services.db
        pools = [engine.pool for engine in (db.engine, db.reader) if engine is not None]
        for _ in range(500):
            if all(pool.checkedout() == 0 for pool in pools):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the request's connection did not go back to the pool")
        trips = Trips(self.log.take())
        # The counter itself works: it saw the transaction begin and end, or the read without one.
        if reads_only:
            assert trips.own, str(trips)
            assert not trips.transactions(), str(trips)
        else:
            assert [_simple(trips.own[0]), _simple(trips.own[-1])] == ["BEGIN", "COMMIT"], str(trips)
        return trips


@contextlib.contextmanager
def serving_counted(settings: Settings, clock: SettableClock) -> Iterator[Counted]:
    """The app on one pooled connection (and one for reads), served through a proxy that counts its
    round trips."""
    assert settings.database_url is not None
    log = WireLog()
    # The counting proxy forwards to the plain one, which knows how to reach any test server.
    with proxy_to(settings.database_url) as plain:
        proxy = CountingProxy(plain.port, log).start()
        try:
            through = proxy.url_through(settings.database_url)
            one_each = replace(
                settings, database_url=through, database_pool_size=1, database_read_pool_size=1
            )
            app = create_app(one_each, clock)
            with serving_asgi(app, "tsunagari-counted") as url:
                yield Counted(app, url, log)
        finally:
            proxy.stop()
