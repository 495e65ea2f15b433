"""Attacks on the trait fold queue (issue 12): folds racing an erasure, reads racing folds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import text

from domain.clock import SettableClock
from infra.db import Database, create_engine
from infra.settings import Settings
from tests.integration.factories import PASSWORD, bearer, sign_up
from tests.integration.lock_waits import side_connections, until_waiting
from tests.integration.test_timeline import app_event, post_events
from timeline.recording import fold_pending
from timeline.service import traits_of_members


async def test_a_fold_skips_a_member_being_erased_and_both_complete(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    """The erasure holds the member's row, then deletes the member's queued folds. A worker folding then
    must not wait for the member's row while holding those folds (that deadlocked: one of them was
    cancelled, the worker's whole batch or the member's erasure with a 503). It skips the member, whose
    events stay queued, and the erasure then deletes them."""
    member = await sign_up(client)
    member_id = uuid.UUID(member["member"]["id"])
    assert (await post_events(client, member, app_event("open-1"))).json()["recorded"] == 1
    async with side_connections(settings) as side_engine, side_engine.connect() as blocker:
        # Only to hold the erasure between its lock on the member's row and its deletes.
        await blocker.execute(
            text("SELECT 1 FROM timeline_events WHERE member_id = :m FOR UPDATE"), {"m": member_id}
        )
        erasure = asyncio.create_task(
            client.request("DELETE", "/v1/app/me", json={"password": PASSWORD}, headers=bearer(member))
        )
        await until_waiting(side_engine, "UPDATE timeline_events%")
        # Completes while the erasure holds the member (it used to wait on the member's row here).
        folded = await asyncio.wait_for(fold_pending(db), timeout=10)
        await blocker.rollback()
    erased = await erasure
    assert folded == 0  # the member's event was left queued, not folded
    assert erased.status_code == 204, erased.text
    async with db.unit_of_work() as uow:
        left = await uow.session.execute(
            text(
                "SELECT (SELECT count(*) FROM pending_trait_folds WHERE member_id = :m)"
                " + (SELECT count(*) FROM member_trait_counters WHERE member_id = :m)"
                " + (SELECT count(*) FROM member_daily_activity WHERE member_id = :m)"
            ),
            {"m": member_id},
        )
        assert left.scalar_one() == 0


async def test_traits_read_while_folds_commit_never_count_an_event_twice_or_miss_it(
    client: httpx.AsyncClient, db: Database, settings: Settings, clock: SettableClock
) -> None:
    member = await sign_up(client)
    member_id = uuid.UUID(member["member"]["id"])
    opens = [app_event(f"open-{n}", at=clock.now() - timedelta(minutes=n)) for n in range(60)]
    assert (await post_events(client, member, *opens)).json()["recorded"] == 60
    assert settings.database_url is not None
    readers = Database(create_engine(settings.database_url, pool_size=4))

    async def read() -> tuple[int, int]:
        async with readers.unit_of_work() as uow:
            traits = (await traits_of_members(uow, {member_id: "UTC"}, clock.now()))[member_id]
        return sum(traits.app_open_hours_utc), sum(window.purchases for window in traits.windows)

    try:
        before = await read()
        reads: list[tuple[int, int]] = []

        async def keep_reading(done: asyncio.Event) -> None:
            while not done.is_set():
                reads.append(await read())

        done = asyncio.Event()
        reading = [asyncio.create_task(keep_reading(done)) for _ in range(3)]
        assert await fold_pending(db, batch=4) == 61  # small batches, so reads fall between commits
        done.set()
        await asyncio.gather(*reading)
        after = await read()
    finally:
        await readers.dispose()
    assert before == after == (60, 0)
    assert reads
    assert set(reads) == {before}
