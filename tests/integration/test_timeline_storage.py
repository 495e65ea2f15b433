"""Partitions, export and archiving of the timeline, on a database of their own."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from commands.migrate import upgrade
from domain.clock import SettableClock
from domain.interactions import Channel, InteractionKind
from infra.db import Database, create_engine
from infra.settings import Settings
from tests.conftest import DatabaseFactory, serving
from timeline.export import archive_before, export_events
from timeline.partitions import add_months, ensure_partitions, month_start, partition_months
from timeline.recording import record_many
from timeline.rules import EventDraft

NOW = datetime.now(UTC)


@pytest.fixture
async def store_db(new_database: DatabaseFactory) -> AsyncIterator[Database]:
    # Both run their own event loop (asyncio.run), so from this async fixture they go to a thread.
    url = await asyncio.to_thread(new_database.create, "storage")
    await asyncio.to_thread(upgrade, url)
    database = Database(create_engine(url, pool_size=2))
    yield database
    await database.dispose()


async def anonymous_events(db: Database, *moments: datetime) -> None:
    """Store sales without a member: they need no member rows, which keeps this database minimal."""
    drafts = [
        EventDraft(
            member_id=None,
            kind=InteractionKind.PURCHASED,
            occurred_at=at,
            channel=Channel.POS,
            store_id=uuid.UUID(int=1),
            properties={"amount_minor": 100},
        )
        for at in moments
    ]
    async with db.unit_of_work() as uow:
        await record_many(uow, drafts, NOW)


async def partition_of(db: Database) -> dict[str, str]:
    async with db.unit_of_work() as uow:
        rows = await uow.session.execute(
            text(
                "SELECT occurred_at::text, tableoid::regclass::text FROM timeline_events ORDER BY occurred_at"
            )
        )
        return {occurred_at: partition for occurred_at, partition in rows}


async def test_events_land_in_their_month_and_far_outliers_in_the_default(store_db: Database) -> None:
    this_month = month_start(NOW.date())
    end_of_last_month = datetime(this_month.year, this_month.month, 1, tzinfo=UTC) - timedelta(microseconds=1)
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    await anonymous_events(
        store_db, end_of_last_month, end_of_last_month + timedelta(microseconds=1), long_ago
    )
    placed = sorted((await partition_of(store_db)).values())
    last_month = add_months(this_month, -1)
    assert placed == sorted(
        [
            f"timeline_events_{last_month:%Y_%m}",
            f"timeline_events_{this_month:%Y_%m}",
            "timeline_events_default",
        ]
    )


async def test_partitions_are_kept_ahead(store_db: Database) -> None:
    async with store_db.engine.begin() as connection:
        created_far_ahead = await ensure_partitions(connection, NOW + timedelta(days=200))
        again = await ensure_partitions(connection, NOW + timedelta(days=200))
        months = await partition_months(connection)
    assert created_far_ahead
    assert again == []
    assert add_months(month_start((NOW + timedelta(days=200)).date()), 3) in months


async def test_export_streams_ndjson_oldest_first(store_db: Database) -> None:
    moments = [NOW - timedelta(days=d) for d in (3, 1, 2)]
    await anonymous_events(store_db, *moments)
    out = io.BytesIO()
    progress: list[tuple[int, int]] = []
    count = await export_events(
        store_db,
        out,
        since=NOW - timedelta(days=2, hours=1),
        progress=lambda done, total: progress.append((done, total)),
    )
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == len(lines) == 2
    assert [line["kind"] for line in lines] == ["purchased", "purchased"]
    assert lines[0]["phase"] == "buy"
    assert lines[0]["occurred_at"] < lines[1]["occurred_at"]
    assert progress[-1] == (2, 2)


async def test_archive_exports_then_drops_old_months(store_db: Database, tmp_path: Path) -> None:
    this_month = month_start(NOW.date())
    old = datetime(add_months(this_month, -13).year, add_months(this_month, -13).month, 15, tzinfo=UTC)
    stray = datetime(2001, 1, 1, tzinfo=UTC)
    recent = NOW - timedelta(days=1)
    await anonymous_events(store_db, old, stray, recent)
    files = await archive_before(store_db, add_months(this_month, -12), tmp_path)
    archived = []
    for path in files:
        with gzip.open(path) as handle:
            archived += [json.loads(line)["occurred_at"] for line in handle]
    assert len(archived) == 2
    remaining = await partition_of(store_db)
    assert len(remaining) == 1
    async with store_db.engine.connect() as connection:
        assert add_months(this_month, -13) not in await partition_months(connection)


async def test_a_month_whose_rows_wait_in_the_default_partition_is_created_around_them(
    store_db: Database,
) -> None:
    far = NOW + timedelta(days=150)  # beyond the months made ahead: lands in DEFAULT
    await anonymous_events(store_db, far)
    assert list((await partition_of(store_db)).values()) == ["timeline_events_default"]
    async with store_db.engine.begin() as connection:
        created = await ensure_partitions(connection, far)
    month = month_start(far.date())
    assert f"timeline_events_{month:%Y_%m}" in created
    assert list((await partition_of(store_db)).values()) == [f"timeline_events_{month:%Y_%m}"]


async def test_the_app_starts_in_a_month_with_rows_already_in_the_default_partition(
    settings: Settings, new_database: DatabaseFactory
) -> None:
    url = await asyncio.to_thread(new_database.create, "restart")
    await asyncio.to_thread(upgrade, url)
    database = Database(create_engine(url, pool_size=2))
    try:
        await anonymous_events(database, NOW + timedelta(days=150))
    finally:
        await database.dispose()
    later = SettableClock(NOW + timedelta(days=150))
    with serving(msgspec.structs.replace(settings, database_url=url), later) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            assert (await client.get("/readyz")).status_code == 200


async def test_a_month_is_created_while_rows_of_it_keep_arriving(store_db: Database) -> None:
    """Rows written to DEFAULT while their month's partition is made neither stay behind nor stop it."""
    month = add_months(month_start(NOW.date()), 1)
    name = f"timeline_events_{month:%Y_%m}"
    async with store_db.engine.begin() as connection:  # that month has no partition yet
        await connection.execute(text(f'ALTER TABLE timeline_events DETACH PARTITION "{name}"'))
        await connection.execute(text(f'DROP TABLE "{name}"'))
    during = datetime(month.year, month.month, 10, tzinfo=UTC)
    await anonymous_events(store_db, *([during] * 20_000))
    stop = asyncio.Event()

    async def keep_writing() -> None:
        while not stop.is_set():
            # A write that routed its row to DEFAULT just before the partition was attached fails
            # with a check violation (and would be retried); every other one lands.
            with contextlib.suppress(IntegrityError):
                await anonymous_events(store_db, during)

    writer = asyncio.create_task(keep_writing())
    await asyncio.sleep(0.2)
    async with store_db.engine.begin() as connection:
        created = await ensure_partitions(connection, NOW)
    stop.set()
    await writer
    assert name in created
    assert set((await partition_of(store_db)).values()) == {name}


@pytest.mark.logs_errors  # start-up logs that it could not make the partitions this time
async def test_partition_upkeep_gives_way_to_a_long_reader_and_the_app_still_starts(
    store_db: Database, settings: Settings
) -> None:
    month = add_months(month_start(NOW.date()), 1)
    name = f"timeline_events_{month:%Y_%m}"
    async with store_db.engine.begin() as connection:
        await connection.execute(text(f'ALTER TABLE timeline_events DETACH PARTITION "{name}"'))
        await connection.execute(text(f'DROP TABLE "{name}"'))
    async with store_db.engine.connect() as reader:  # a long export holds the table
        await reader.execute(text("SELECT count(*) FROM timeline_events"))
        started = time.monotonic()
        with pytest.raises(DBAPIError, match="lock timeout"):
            async with store_db.engine.begin() as connection:
                await ensure_partitions(connection, NOW)
        assert time.monotonic() - started < 10
        database_url = store_db.engine.url.render_as_string(hide_password=False)
        with serving(msgspec.structs.replace(settings, database_url=database_url), SettableClock(NOW)) as url:
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                assert (await client.get("/readyz")).status_code == 200
        await reader.rollback()
    async with store_db.engine.begin() as connection:  # the next attempt, once the reader is done
        assert name in await ensure_partitions(connection, NOW)
