"""What every `tsunagari` command that touches the database shares: servers ready, one event loop, errors."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TextIO, TypeVar

from commands import migrate
from domain.errors import DomainError
from infra.db import Database, create_engine
from infra.embedded import embedded_services
from infra.settings import Settings

T = TypeVar("T")


@contextmanager
def ready_database(settings: Settings) -> Iterator[Settings]:
    """Start embedded servers where nothing is configured, and bring an embedded database up to date.

    A configured database is migrated only by an explicit `tsunagari migrate`, as operators expect.
    """
    with embedded_services(settings) as ready:
        assert ready.database_url is not None
        if settings.database_url is None:
            migrate.upgrade(ready.database_url)
        yield ready


def run_reporting_errors(
    settings: Settings, action: Callable[[Database], Awaitable[str]], output: TextIO = sys.stdout
) -> int:
    with ready_database(settings) as ready:
        try:
            print(in_loop(ready, action), file=output)
        except DomainError as error:
            print(f"tsunagari: {error.code}: {error.detail}", file=sys.stderr)
            return 1
    return 0


def in_loop(settings: Settings, action: Callable[[Database], Awaitable[T]]) -> T:
    """Run one async action with a database pool that lives exactly as long as the action."""
    database_url = settings.database_url
    assert database_url is not None

    async def run() -> T:
        db = Database(create_engine(database_url, pool_size=2))
        try:
            return await action(db)
        finally:
            await db.dispose()

    return asyncio.run(run())
