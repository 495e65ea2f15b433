"""Ordering concurrent transactions in a test by the locks they wait on (pg_stat_activity)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db import create_engine
from infra.settings import Settings

_WAITING_ON_A_LOCK = text(
    """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE :query
    """
)


@asynccontextmanager
async def side_connections(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """Connections of the test's own, beside the app's and the `db` fixture's."""
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, pool_size=3)
    try:
        yield engine
    finally:
        await engine.dispose()


async def until_waiting(engine: AsyncEngine, query: str, timeout_s: float = 10) -> None:
    """Until a backend waits on a lock while running a statement like `query` (an ILIKE pattern)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        async with engine.connect() as connection:
            if (await connection.execute(_WAITING_ON_A_LOCK, {"query": query})).scalar_one():
                return
        await asyncio.sleep(0.025)
    raise AssertionError(f"nothing waited on a lock running {query}")
