"""Every integration test starts from empty tables and the current time, and fails if anything logged
an error while it ran (a test that provokes one on purpose says so with `@pytest.mark.logs_errors`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from accounts.rules import StaffRole
from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from migrations.models import target_metadata
from push.fcm_local import create_local_fcm
from tests.conftest import serving_asgi
from tests.integration.factories import TerminalCredentials, staff_login
from tests.integration.push_support import LocalFcmServer
from tests.integration.register import register
from tests.integration.round_trip_counting import Counted, serving_counted


@pytest.fixture
async def admin(client: httpx.AsyncClient, db: Database, clock: SettableClock) -> dict[str, Any]:
    """A logged-in admin's session."""
    return await staff_login(client, db, clock)


@pytest.fixture
async def marketer(client: httpx.AsyncClient, db: Database, clock: SettableClock) -> dict[str, Any]:
    """A logged-in marketer's session."""
    return await staff_login(client, db, clock, StaffRole.MARKETER)


@pytest.fixture
async def terminal(client: httpx.AsyncClient, admin: dict[str, Any]) -> TerminalCredentials:
    """A POS terminal of a store coded TKY-GINZA."""
    return await register(client, admin, "TKY-GINZA")


@pytest.fixture(autouse=True)
async def clean_state(db: Database, clock: SettableClock) -> None:
    clock.set(datetime.now(UTC))
    names = ", ".join(f'"{table.name}"' for table in target_metadata().sorted_tables)
    async with db.unit_of_work() as uow:
        await uow.session.execute(text(f"TRUNCATE {names} CASCADE"))


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(autouse=True)
def no_error_logged(request: pytest.FixtureRequest) -> Iterator[None]:
    errors = _ErrorRecords()
    root = logging.getLogger()
    root.addHandler(errors)
    try:
        yield
    finally:
        root.removeHandler(errors)
    if request.node.get_closest_marker("logs_errors") is None:
        assert errors.messages == [], "errors were logged while this test ran"


@pytest.fixture(scope="session")
def local_fcm_server() -> Iterator[LocalFcmServer]:
    with serving_asgi(create_local_fcm(), "local-fcm") as url:
        yield LocalFcmServer(url)


@pytest.fixture
def fcm(local_fcm_server: LocalFcmServer) -> LocalFcmServer:
    """The local FCM server, with nothing received and no failure rules."""
    local_fcm_server.reset()
    return local_fcm_server


@pytest.fixture(scope="module")
def counted(settings: Settings, clock: SettableClock) -> Iterator[Counted]:
    """The app served behind a proxy that counts its round trips to PostgreSQL (round-trip tests)."""
    with serving_counted(settings, clock) as counted:
        yield counted


@pytest.fixture
async def http(counted: Counted) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the counted app."""
    async with httpx.AsyncClient(base_url=counted.url, timeout=60) as client:
        yield client
