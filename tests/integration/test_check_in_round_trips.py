"""How many round trips to PostgreSQL one app check-in makes.

Counted at the driver, on the app's own engine: each statement SQLAlchemy hands to asyncpg
(`before_cursor_execute`; savepoints included, an executemany batch once), and each query asyncpg sends
on its own (its query logger: BEGIN, COMMIT, ROLLBACK, and a pool's ping, were there one). Each is one
round trip to the server. Not counted: Redis, and the Parse round trip of a statement new to the
connection (asyncpg prepares a statement once per connection and keeps it; the app here runs on one
pooled connection, warmed up by an earlier check-in, so few remain)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection

from api.app import create_app
from domain.clock import SettableClock
from infra.settings import Settings
from tests.conftest import serving_asgi
from tests.integration.factories import sign_up
from tests.integration.problems import assert_problem
from tests.integration.test_check_ins import OSAKA, TOKYO, check_in, offset, store_at

# The target for an accepted check-in is 10 (it took 33, a pool pre-ping's 3 included). Of the 21
# reached, geofence sends 3 (the store with the member's lock, the member's facts, the check-in with its
# attempt); the rest are the transaction (2), the Idempotency-Key (5), the points account and miles (6)
# and the timeline (5), which their own changes are to bring down.
ACCEPTED_AT_MOST = 21
# Rolled back, then kept in a second transaction (it took 27): geofence sends 2 in each.
REJECTED_AT_MOST = 17


@dataclass
class RoundTrips:
    """What the app sent to PostgreSQL, one entry per round trip, since the last `reset`."""

    sent: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _checked_out: int = 0
    _idle: threading.Event = field(default_factory=threading.Event)

    def count(self, what: str) -> None:
        with self._lock:
            self.sent.append(what)

    def connection_taken(self) -> None:
        with self._lock:
            self._checked_out += 1
            self._idle.clear()

    def connection_returned(self) -> None:
        with self._lock:
            self._checked_out -= 1
        # The driver reports each query on the app's loop once it is done (`call_soon`): idle after them.
        asyncio.get_running_loop().call_soon(self._idle_if_no_connection_is_out)

    def _idle_if_no_connection_is_out(self) -> None:
        with self._lock:
            if self._checked_out == 0:
                self._idle.set()

    async def _until_idle(self) -> None:
        """Until no request holds a connection: the client has its answer once the transaction is
        settled, a moment before the session closes and the driver reports its last query."""
        assert await asyncio.to_thread(self._idle.wait, 10), "a connection was never returned"

    async def reset(self) -> None:
        await self._until_idle()
        with self._lock:
            self.sent.clear()

    async def settled(self) -> list[str]:
        """The round trips of the request just answered."""
        await self._until_idle()
        with self._lock:
            return list(self.sent)


@dataclass(frozen=True)
class CountedApp:
    url: str
    round_trips: RoundTrips


@pytest.fixture(scope="module")
def counted_app(settings: Settings, clock: SettableClock) -> Iterator[CountedApp]:
    """The app on a pool of one connection, its round trips to PostgreSQL counted."""
    app = create_app(msgspec.structs.replace(settings, database_pool_size=1), clock)
    round_trips = RoundTrips()
    with serving_asgi(app, "round-trips") as url:
        engine = app.state.services.db.engine.sync_engine

        def statement(connection: Connection, cursor: Any, sql: str, *args: Any) -> None:
            round_trips.count(" ".join(sql.split()[:4]))

        def driver_query(logged: Any) -> None:
            # Statements run with arguments are SQLAlchemy's (an executemany batch), counted above.
            if not logged.args:
                round_trips.count(logged.query)

        def log_driver_queries(dbapi_connection: Any, *args: Any) -> None:
            # On every checkout (loggers are a set): a connection's first checkout has no ping before it.
            dbapi_connection.driver_connection.add_query_logger(driver_query)

        event.listen(engine, "before_cursor_execute", statement)
        event.listen(engine.pool, "checkout", log_driver_queries)
        event.listen(engine.pool, "checkout", lambda *args: round_trips.connection_taken())
        event.listen(engine.pool, "checkin", lambda *args: round_trips.connection_returned())
        yield CountedApp(url, round_trips)


@pytest.fixture
async def counted(counted_app: CountedApp) -> AsyncIterator[tuple[httpx.AsyncClient, RoundTrips]]:
    async with httpx.AsyncClient(base_url=counted_app.url, timeout=60) as http:
        yield http, counted_app.round_trips


async def test_an_accepted_check_in_makes_few_round_trips(
    counted: tuple[httpx.AsyncClient, RoundTrips], admin: dict[str, Any], clock: SettableClock
) -> None:
    http, round_trips = counted
    first, second = await store_at(http, admin, TOKYO), await store_at(http, admin, offset(TOKYO, 900))
    member = await sign_up(http)
    warm_up = await check_in(http, member, first, TOKYO, clock.now())
    assert warm_up.status_code == 200, warm_up.text
    clock.advance(timedelta(minutes=30))

    await round_trips.reset()
    accepted = await check_in(http, member, second, offset(TOKYO, 900), clock.now())
    sent = await round_trips.settled()

    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["duplicate"], accepted.json()["miles_awarded"]) == (False, 20)
    assert len(sent) <= ACCEPTED_AT_MOST, "\n".join(sent)


async def test_a_rejected_check_in_is_kept_in_few_round_trips(
    counted: tuple[httpx.AsyncClient, RoundTrips], admin: dict[str, Any], clock: SettableClock
) -> None:
    """A rejection rolls its transaction back, then keeps its attempt and answer in a second one."""
    http, round_trips = counted
    tokyo, osaka = await store_at(http, admin, TOKYO), await store_at(http, admin, OSAKA)
    member = await sign_up(http)
    warm_up = await check_in(http, member, tokyo, TOKYO, clock.now())
    assert warm_up.status_code == 200, warm_up.text
    clock.advance(timedelta(minutes=30))

    await round_trips.reset()
    rejected = await check_in(http, member, osaka, OSAKA, clock.now())
    sent = await round_trips.settled()

    assert_problem(rejected, 422, "impossible_travel")
    assert len(sent) <= REJECTED_AT_MOST, "\n".join(sent)
