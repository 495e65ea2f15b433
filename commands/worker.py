"""`tsunagari worker`: the periodic jobs and push sending, safe to run on any number of hosts at once.

Each periodic job runs under a PostgreSQL advisory lock named after it, so one worker at a time runs a
given job; every job is idempotent, so a crash mid-run is mended by the next run. Push sending runs on
every worker at once (deliveries are claimed with SKIP LOCKED, see push.dispatch).
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
from infra.db import Database, create_engine
from infra.idempotency import purge_expired
from infra.redis import RedisKeys, connect_redis
from infra.settings import Settings
from offers.learning import learn_rewards
from offers.program import OfferProgram, load_offer_program
from points.expiry import expire_due, purge_code_uses
from points.program import Program, load_program
from push.dispatch import Dispatcher
from push.fcm import FcmSender, sender_for
from push.materialize import materialize_campaigns
from push.pacing import Pacer
from push.policy import PushPolicy, load_push_policy
from push.profiles import refresh_profiles
from push.upkeep import finish_campaigns, recover_lost_claims, retire_addresses
from timeline.export import purge_receipts
from timeline.partitions import ensure_partitions
from timeline.population import refresh_population
from timeline.recording import fold_pending
from timeline.rules import MAX_EVENT_AGE

log = logging.getLogger(__name__)
IDLE_S = 1.0  # how long a worker with nothing due waits before looking again


@dataclass(frozen=True)
class WorkerContext:
    db: Database
    clock: Clock
    program: Program
    push_policy: PushPolicy
    offer_program: OfferProgram


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[WorkerContext], Awaitable[object]]
    # A heavy sweep waits a period before its first run, so restarting workers do not all redo it.
    first_after_a_period: bool = False


async def _partitions(context: WorkerContext) -> object:
    async with context.db.engine.begin() as connection:
        return await ensure_partitions(connection, context.clock.now())


JOBS = (
    Job("points.expire", timedelta(minutes=15), lambda c: expire_due(c.db, c.clock.now())),
    Job("points.purge_code_uses", timedelta(minutes=10), lambda c: purge_code_uses(c.db, c.clock.now())),
    Job("idempotency.purge", timedelta(hours=1), lambda c: purge_expired(c.db, c.clock.now())),
    Job(
        "timeline.purge_receipts",
        timedelta(hours=6),
        lambda c: purge_receipts(c.db, c.clock.now() - MAX_EVENT_AGE - timedelta(days=1)),
    ),
    Job("timeline.partitions", timedelta(hours=12), _partitions),
    # Members' trait inputs trail their events by about this period (timeline.recording).
    Job("timeline.fold_traits", timedelta(seconds=1), lambda c: fold_pending(c.db)),
    Job("timeline.population", timedelta(hours=1), lambda c: refresh_population(c.db, c.clock.now())),
    # Drawing a campaign profiles the members without a profile itself; this keeps the rest current.
    Job(
        "push.profiles",
        timedelta(hours=1),
        lambda c: refresh_profiles(c.db, c.program, c.clock.now()),
        first_after_a_period=True,
    ),
    Job(
        "push.materialize",
        timedelta(seconds=10),
        lambda c: materialize_campaigns(c.db, c.program, c.push_policy, c.clock.now()),
    ),
    Job("push.recover", timedelta(seconds=10), lambda c: recover_lost_claims(c.db, c.clock.now())),
    Job("push.finish", timedelta(seconds=30), lambda c: finish_campaigns(c.db, c.clock.now())),
    Job("offers.learn", timedelta(minutes=1), lambda c: learn_rewards(c.db, c.offer_program, c.clock.now())),
    Job(
        "push.retire_addresses",
        timedelta(hours=24),
        lambda c: retire_addresses(c.db, c.push_policy, c.clock.now()),
    ),
)

# Every job may hold two connections at once (its lock's and its work's); sending needs a few more.
POOL_SIZE = 2 * len(JOBS) + 4


async def run_job(context: WorkerContext, job: Job) -> bool:
    """Run `job` unless another worker is running it; True when it ran."""
    lock_key = zlib.crc32(job.name.encode())
    async with context.db.engine.connect() as connection:
        got = (await connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key})).scalar()
        if not got:
            return False
        try:
            result = await job.run(context)
            log.info("job %s done", job.name, extra={"job": job.name, "result": str(result)})
        finally:
            await connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key})
            await connection.commit()
    return True


async def run_periodically(context: WorkerContext, job: Job, stop: asyncio.Event) -> None:
    """Each job in its own loop, so an hour-long sweep does not hold up the ten-second ones."""
    if job.first_after_a_period:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), job.every.total_seconds())
    while not stop.is_set():
        try:
            await run_job(context, job)
        except Exception:
            log.exception("job %s failed", job.name)  # retried at its next turn
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), job.every.total_seconds())


async def send_pushes(dispatcher: Dispatcher, stop: asyncio.Event) -> None:
    """Claim and send due deliveries until stopped; a batch in progress finishes its in-flight group."""
    while not stop.is_set():
        try:
            handled = await dispatcher.dispatch_once(stop)
        except Exception:
            log.exception("push dispatch failed; its claims go back to the queue")
            handled = 0
        if handled == 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), IDLE_S)


async def run_worker(settings: Settings, clock: Clock, stop: asyncio.Event) -> None:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    db = Database(create_engine(settings.database_url, pool_size=POOL_SIZE))
    redis = RedisKeys(connect_redis(settings.redis_url), settings.redis_key_prefix)
    context = WorkerContext(
        db,
        clock,
        load_program(settings.points_program),
        load_push_policy(settings.push_policy),
        load_offer_program(settings.offer_program),
    )
    sender: FcmSender | None = sender_for(settings)
    tasks = [asyncio.create_task(run_periodically(context, job, stop)) for job in JOBS]
    if sender is None:
        log.warning("push sending is off: set TSUNAGARI_FCM_CREDENTIALS (or TSUNAGARI_FCM_URL)")
    else:
        pacer = Pacer(redis, context.push_policy.send_rate_per_second)
        dispatcher = Dispatcher(db, pacer, sender, context.push_policy, context.program, clock)
        tasks.append(asyncio.create_task(send_pushes(dispatcher, stop)))
    try:
        await asyncio.gather(*tasks)
    finally:
        if sender is not None:
            await sender.close()
        await redis.client.aclose()
        await db.dispose()
