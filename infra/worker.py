"""`tsunagari worker`: the periodic jobs, safe to run on any number of hosts at once.

Each job runs under a PostgreSQL advisory lock named after it, so one worker at a time runs a given
job; every job is idempotent, so a crash mid-run is mended by the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text

from domain.clock import Clock
from infra.db import Database
from infra.idempotency import purge_expired
from points.expiry import expire_due, purge_code_uses
from timeline.export import purge_receipts
from timeline.partitions import ensure_partitions
from timeline.rules import MAX_EVENT_AGE

log = logging.getLogger(__name__)
TICK_S = 30


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[Database, Clock], Awaitable[object]]


async def _partitions(db: Database, clock: Clock) -> object:
    async with db.engine.begin() as connection:
        return await ensure_partitions(connection, clock.now())


JOBS = (
    Job("points.expire", timedelta(minutes=15), lambda db, clock: expire_due(db, clock.now())),
    Job("points.purge_code_uses", timedelta(minutes=10), lambda db, clock: purge_code_uses(db, clock.now())),
    Job("idempotency.purge", timedelta(hours=1), lambda db, clock: purge_expired(db, clock.now())),
    Job(
        "timeline.purge_receipts",
        timedelta(hours=6),
        lambda db, clock: purge_receipts(db, clock.now() - MAX_EVENT_AGE - timedelta(days=1)),
    ),
    Job("timeline.partitions", timedelta(hours=12), _partitions),
)


async def run_job(db: Database, clock: Clock, job: Job) -> bool:
    """Run `job` unless another worker is running it; True when it ran."""
    lock_key = zlib.crc32(job.name.encode())
    async with db.engine.connect() as connection:
        got = (await connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key})).scalar()
        if not got:
            return False
        try:
            result = await job.run(db, clock)
            log.info("job %s done", job.name, extra={"job": job.name, "result": str(result)})
        finally:
            await connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key})
            await connection.commit()
    return True


async def run_worker(db: Database, clock: Clock, stop: asyncio.Event) -> None:
    last_run = {job.name: clock.now() - job.every for job in JOBS}
    while not stop.is_set():
        for job in JOBS:
            if clock.now() - last_run[job.name] >= job.every:
                try:
                    await run_job(db, clock, job)
                except Exception:
                    # One failing job must not stop the others; it is retried at its next turn.
                    log.exception("job %s failed", job.name)
                last_run[job.name] = clock.now()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), TICK_S)
