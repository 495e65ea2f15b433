"""Monthly partitions of timeline_events, created ahead of time; a DEFAULT partition catches the rest.

Months are UTC calendar months of `occurred_at`. The migration creates the months around its run;
`ensure_partitions` (run at app start and by `tsunagari timeline partitions`) keeps three months ahead.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

PARENT = "timeline_events"
DEFAULT_PARTITION = f"{PARENT}_default"
MONTHS_AHEAD = 3
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


def partition_ddl(month: date) -> str:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end_month = add_months(month, 1)
    end = datetime(end_month.year, end_month.month, 1, tzinfo=UTC)
    return (
        f'CREATE TABLE IF NOT EXISTS "{partition_name(month)}" PARTITION OF "{PARENT}" '
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


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
    """Create the partitions of this month and the next `months_ahead` months where missing."""
    existing = await partition_months(connection)
    this_month = month_start(now.astimezone(UTC).date())
    missing = [add_months(this_month, offset) for offset in range(months_ahead + 1)]
    missing = [month for month in missing if month not in existing]
    for month in missing:
        await connection.execute(text(partition_ddl(month)))
    return [partition_name(month) for month in missing]
