"""Streaming the timeline out as NDJSON (for a warehouse or CDP), and archiving months past retention."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

import msgspec
from sqlalchemy import ColumnElement, delete, func, select, text

from domain.interactions import PHASE_OF_KIND
from infra.db import Database
from timeline.partitions import (
    DEFAULT_PARTITION,
    PARENT,
    add_months,
    month_bounds,
    partition_months,
    partition_name,
)
from timeline.tables import AppEventReceipt, TimelineEvent

Progress = Callable[[int, int], None]


class ByteSink(Protocol):
    def write(self, data: bytes, /) -> int: ...


ROWS_PER_FETCH = 10_000
_encoder = msgspec.json.Encoder()


def _window(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    conditions = []
    if since is not None:
        conditions.append(TimelineEvent.occurred_at >= since)
    if until is not None:
        conditions.append(TimelineEvent.occurred_at < until)
    return conditions


async def export_events(
    db: Database,
    out: ByteSink,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress | None = None,
) -> int:
    """Write events with `since <= occurred_at < until` as NDJSON, oldest first, streaming.

    A command-line job: writes to `out` block briefly, which only this job's event loop notices.
    """
    conditions = _window(since, until)
    columns = TimelineEvent.__table__.columns
    async with db.engine.connect() as connection:
        total = (
            await connection.execute(select(func.count()).select_from(TimelineEvent).where(*conditions))
        ).scalar()
        result = await connection.stream(
            select(*columns)
            .where(*conditions)
            .order_by(TimelineEvent.occurred_at, TimelineEvent.id)
            .execution_options(yield_per=ROWS_PER_FETCH)
        )
        written = 0
        async for rows in result.partitions():
            for row in rows:
                event = dict(row._mapping)
                event["phase"] = PHASE_OF_KIND[event["kind"]]
                out.write(_encoder.encode(event) + b"\n")
            written += len(rows)
            if progress is not None:
                progress(written, total or written)
    return written


async def archive_before(
    db: Database, before: date, out_dir: Path, progress: Progress | None = None
) -> list[Path]:
    """Export, then drop, every event that occurred before the month `before` (UTC).

    Whole monthly partitions are detached and dropped (no row-by-row delete); stray rows in the
    DEFAULT partition are exported and deleted. Each file is complete before anything is removed.
    """
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    cutoff, _ = month_bounds(before)
    written: list[Path] = []
    async with db.engine.connect() as connection:
        months = sorted(m for m in await partition_months(connection) if add_months(m, 1) <= before)
    for month in months:
        start, end = month_bounds(month)
        path = out_dir / f"{partition_name(month)}.ndjson.gz"
        await _export_to_gzip(db, path, start, end, progress)
        async with db.engine.begin() as connection:
            await connection.execute(
                text(f'ALTER TABLE "{PARENT}" DETACH PARTITION "{partition_name(month)}"')
            )
            await connection.execute(text(f'DROP TABLE "{partition_name(month)}"'))
        written.append(path)
    stray = out_dir / f"{DEFAULT_PARTITION}_before_{before:%Y_%m}.ndjson.gz"
    if await _export_to_gzip(db, stray, None, cutoff, progress):
        async with db.engine.begin() as connection:
            await connection.execute(delete(TimelineEvent).where(TimelineEvent.occurred_at < cutoff))
        written.append(stray)
    else:
        await asyncio.to_thread(stray.unlink)
    return written


async def _export_to_gzip(
    db: Database, path: Path, since: datetime | None, until: datetime, progress: Progress | None
) -> int:
    partial = path.with_suffix(path.suffix + ".partial")
    with gzip.open(partial, "wb") as out:
        count = await export_events(db, out, since, until, progress)
    await asyncio.to_thread(partial.replace, path)
    return count


async def purge_receipts(db: Database, older_than: datetime) -> int:
    """Client event receipts are needed only while an app may still resend (7 days); older ones go."""
    async with db.unit_of_work() as uow:
        result = await uow.session.execute(
            delete(AppEventReceipt).where(AppEventReceipt.received_at < older_than)
        )
    return int(getattr(result, "rowcount", 0) or 0)
