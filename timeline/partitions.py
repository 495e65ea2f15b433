"""Monthly partitions of timeline_events, created ahead of time; a DEFAULT partition catches the rest.

Months are UTC calendar months of `occurred_at`. The migration creates the months around its run;
`ensure_partitions` (run at app start, by the worker and by `tsunagari timeline partitions`) keeps
three months ahead. Rows that reached DEFAULT before their month had a partition are moved into it as
it is created, so no stored row can stop a partition (and with it the app's start) from being made.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.locks import lock_key
from timeline.tables import TimelineEvent

PARENT = "timeline_events"
DEFAULT_PARTITION = f"{PARENT}_default"
MONTHS_AHEAD = 3
LOCK_WAIT = "2s"
PARTITION_NAME = re.compile(rf"^{PARENT}_(\d{{4}})_(\d{{2}})$")


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{PARENT}_{month.year:04d}_{month.month:02d}"


def is_partition(table_name: str) -> bool:
    return table_name == DEFAULT_PARTITION or PARTITION_NAME.match(table_name) is not None


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The UTC instants a monthly partition spans, [start, end)."""
    end_month = add_months(month, 1)
    return (
        datetime(month.year, month.month, 1, tzinfo=UTC),
        datetime(end_month.year, end_month.month, 1, tzinfo=UTC),
    )


def partition_ddl(month: date) -> list[str]:
    """Create the month's partition, taking over its rows from DEFAULT: made apart, filled, attached.

    (`CREATE TABLE ... PARTITION OF` would fail outright if DEFAULT held a row of that month.)
    """
    name, start, end = partition_name(month), *month_bounds(month)
    columns = ", ".join(f'"{column.name}"' for column in TimelineEvent.__table__.columns)
    # DDL takes no bind parameters; every name and date here is ours, none comes from a request.
    return [
        f'CREATE TABLE "{name}" (LIKE "{PARENT}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
        f'WITH moved AS (DELETE FROM "{DEFAULT_PARTITION}" '  # noqa: S608
        f"WHERE occurred_at >= '{start.isoformat()}' AND occurred_at < '{end.isoformat()}' "
        f"RETURNING {columns}) "
        f'INSERT INTO "{name}" ({columns}) SELECT {columns} FROM moved',
        f'ALTER TABLE "{PARENT}" ATTACH PARTITION "{name}" '
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')",
    ]


async def partition_months(connection: AsyncConnection) -> set[date]:
    """The months that have a partition of their own."""
    names = (
        await connection.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = CAST(:parent AS regclass)"
            ),
            {"parent": PARENT},
        )
    ).scalars()
    return {date(int(m.group(1)), int(m.group(2)), 1) for name in names if (m := PARTITION_NAME.match(name))}


async def ensure_partitions(
    connection: AsyncConnection, now: datetime, months_ahead: int = MONTHS_AHEAD
) -> list[str]:
    """Create the partitions of this month and the next `months_ahead` months where missing.

    Runs in the caller's transaction, under a lock, so processes starting together create each once.
    Attaching a partition needs the table's exclusive lock, and while that lock is waited for every
    reader queues behind it: so it is waited for only briefly (LOCK_WAIT) and on timeout the work is
    left to the next attempt (the worker's, twelve hours on, with months to spare).
    """
    await connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
    namespace, key = lock_key("timeline.partitions", PARENT)
    await connection.execute(text("SELECT pg_advisory_xact_lock(:n, :k)"), {"n": namespace, "k": key})
    existing = await partition_months(connection)
    this_month = month_start(now.astimezone(UTC).date())
    missing = [add_months(this_month, offset) for offset in range(months_ahead + 1)]
    missing = [month for month in missing if month not in existing]
    if missing:
        # No row may reach DEFAULT between moving a month's rows out and attaching its partition
        # (the attach would then fail): writes routed to DEFAULT wait the few milliseconds this takes.
        await connection.execute(text(f'LOCK TABLE "{DEFAULT_PARTITION}" IN ACCESS EXCLUSIVE MODE'))
    for month in missing:
        for statement in partition_ddl(month):
            await connection.execute(text(statement))
    return [partition_name(month) for month in missing]
