"""Test infrastructure: real PostgreSQL and Redis, and the app served over real HTTP on loopback.

PostgreSQL and Redis come from TSUNAGARI_DATABASE_URL / TSUNAGARI_REDIS_URL when set, otherwise
embedded ones are started for the session. Either way the tests create their own databases on
that server and drop them afterwards, so a developer's database is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import msgspec
import pytest
import uvicorn
from hypothesis import settings as hypothesis_settings
from litestar import Litestar
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from api.app import create_app
from commands.migrate import upgrade
from domain.clock import Clock, SettableClock
from infra.db import Database, asyncpg_url, create_engine
from infra.embedded import embedded_services
from infra.settings import Settings, load_settings

# Property tests explore new examples on every local run; CI (HYPOTHESIS_PROFILE=ci) replays the same
# ones each time, so a red build always means a change in the code, and shared cores never time out.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Points become spendable two days after the sale and last 365 days (no month-end rounding), and stages
# need far more miles than everyday test sales, so only the tests about stages reach one.
TEST_PROGRAM = msgspec.json.encode(
    {
        "pending_days": 2,
        "expire_at_month_end": False,
        "stages": {
            "thresholds": [
                {"stage": "basic", "miles": 0, "bonus_points": 0},
                {"stage": "silver", "miles": 100_000, "bonus_points": 500},
                {"stage": "gold", "miles": 300_000, "bonus_points": 1_000},
            ]
        },
    }
)


@dataclass(frozen=True)
class Backing:
    """Where the test session's servers are: a PostgreSQL server URL and a Redis URL."""

    server_url: str
    redis_url: str

    def database_url(self, database: str) -> str:
        return (
            make_url(asyncpg_url(self.server_url))
            .set(database=database)
            .render_as_string(hide_password=False)
        )


@pytest.fixture(scope="session")
def backing() -> Iterator[Backing]:
    """Embedded servers keep their data outside pytest's temporary root: as root, embedded PostgreSQL
    runs as its own system user, and every pytest session that starts (another developer's, a second
    terminal's) strips group and other permissions from that root, cutting the server off mid-run."""
    data_dir = tempfile.mkdtemp(prefix="tsunagari-test-embedded-")
    given = Settings(
        database_url=os.environ.get("TSUNAGARI_DATABASE_URL") or None,
        redis_url=os.environ.get("TSUNAGARI_REDIS_URL") or None,
        data_dir=data_dir,
    )
    try:
        with embedded_services(given) as ready:
            assert ready.database_url is not None
            assert ready.redis_url is not None
            yield Backing(ready.database_url, ready.redis_url)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def _admin(backing: Backing, sql: str) -> None:
    engine = create_async_engine(backing.database_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def new_database(backing: Backing) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(backing)
    yield factory
    factory.drop_all()


class DatabaseFactory:
    """Creates uniquely named empty databases on the test server and drops them at the end."""

    def __init__(self, backing: Backing) -> None:
        self._backing = backing
        self._created: list[str] = []

    def create(self, label: str) -> str:
        name = f"tsunagari_test_{label}_{secrets.token_hex(4)}"
        asyncio.run(_admin(self._backing, f'CREATE DATABASE "{name}"'))
        self._created.append(name)
        return self._backing.database_url(name)

    def drop_all(self) -> None:
        for name in self._created:
            asyncio.run(_admin(self._backing, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def settings(
    backing: Backing, new_database: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    database_url = new_database.create("api")
    upgrade(database_url)
    return load_settings(
        environ={},
        database_url=database_url,
        redis_url=backing.redis_url,
        data_dir=str(tmp_path_factory.mktemp("data")),
        jwt_signing_key=secrets.token_urlsafe(48),
        code_signing_key=secrets.token_urlsafe(48),
        terminal_key=secrets.token_urlsafe(48),
        redis_key_prefix=f"tsunagari-test-{secrets.token_hex(4)}:",
        log_level="WARNING",
        points_program=TEST_PROGRAM.decode(),
        check_in_policy='{"attempts_per_hour": 12}',
        # Tests move the clock by hours and days; a day-long access token keeps their sessions alive.
        access_token_ttl_s=24 * 3600,
        # Every test signs up and logs in from loopback; the per-address limits have their own tests
        # (test_owasp_unrestricted_resource_consumption.py), on an app served with small ones.
        sign_ups_per_address_per_window=1_000_000,
        login_attempts_per_address_per_window=1_000_000,
    )


@pytest.fixture(scope="session")
def clock() -> SettableClock:
    return SettableClock(datetime.now(UTC))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def serving_asgi(app: Litestar, name: str) -> Iterator[str]:
    """`app` served by uvicorn in a thread, started (lifespan included) before this yields its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, server_header=False
        )
    )
    thread = threading.Thread(target=server.run, name=f"{name}-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def serving(settings: Settings, clock: Clock) -> contextlib.AbstractContextManager[str]:
    """The app, served as in production, on loopback."""
    return serving_asgi(create_app(settings, clock), "tsunagari-test-server")


@pytest.fixture(scope="session")
def base_url(settings: Settings, clock: SettableClock) -> Iterator[str]:
    """The app the tests speak real HTTP to."""
    with serving(settings, clock) as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        yield http


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """Direct database access for setting up what has no HTTP surface (staff accounts) and for checks."""
    assert settings.database_url is not None
    database = Database(create_engine(settings.database_url, pool_size=2))
    yield database
    await database.dispose()
