"""Recompute every member's trait inputs from the timeline, with the same pure folds as recording.

Members are rebuilt in small batches, each in its own transaction holding the batch's counter rows
locked. A rebuild folds the events that are no longer queued for folding (timeline.recording), read in
one statement, so in one snapshot with the queue: an event still queued then, or recorded afterwards,
is left to the worker, which folds it into the rebuilt counters once the rebuild commits (it locks the
same rows first). Nothing is lost or counted twice while traffic continues.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import msgspec
from sqlalchemy import delete, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.clock import Clock
from infra.db import Database, UnitOfWork
from timeline.recording import ActivitySums, add_daily_activity, add_to_sums
from timeline.tables import MemberDailyActivity, MemberTraitCounters, PendingTraitFold, TimelineEvent
from timeline.traits import TraitCounters, daily_delta

MEMBERS_PER_BATCH = 200


async def rebuild_traits(
    db: Database, clock: Clock, progress: Callable[[int, int], None] | None = None
) -> int:
    """Rebuild every member the timeline knows; returns how many were processed."""
    async with db.unit_of_work() as uow:
        found = await uow.session.execute(
            select(TimelineEvent.member_id)
            .where(TimelineEvent.member_id.is_not(None))
            .distinct()
            .order_by(TimelineEvent.member_id)
        )
        member_ids = [member_id for member_id in found.scalars() if member_id is not None]
    for start in range(0, len(member_ids), MEMBERS_PER_BATCH):
        batch = member_ids[start : start + MEMBERS_PER_BATCH]
        async with db.unit_of_work() as uow:
            await _rebuild_batch(uow, batch, clock)
        if progress is not None:
            progress(start + len(batch), len(member_ids))
    return len(member_ids)


async def _rebuild_batch(uow: UnitOfWork, member_ids: list[uuid.UUID], clock: Clock) -> None:
    now = clock.now()
    empty = msgspec.to_builtins(TraitCounters())
    await uow.session.execute(
        pg_insert(MemberTraitCounters).on_conflict_do_nothing(),
        [{"member_id": m, "counters": empty, "updated_at": now} for m in member_ids],
    )
    rows = (
        await uow.session.execute(
            select(MemberTraitCounters)
            .where(MemberTraitCounters.member_id.in_(member_ids))
            .order_by(MemberTraitCounters.member_id)
            .with_for_update()
        )
    ).scalars()
    counters_rows = {row.member_id: row for row in rows}
    await uow.session.execute(
        delete(MemberDailyActivity).where(MemberDailyActivity.member_id.in_(member_ids))
    )

    counters = {member_id: TraitCounters() for member_id in member_ids}
    sums: ActivitySums = {}
    events = await uow.session.stream(
        select(
            TimelineEvent.member_id,
            TimelineEvent.kind,
            TimelineEvent.occurred_at,
            TimelineEvent.store_id,
            TimelineEvent.properties,
        )
        .where(
            TimelineEvent.member_id.in_(member_ids),
            ~exists().where(PendingTraitFold.event_id == TimelineEvent.id),
        )
        .execution_options(yield_per=5000)
    )
    async for member_id, kind, occurred_at, store_id, properties in events:
        assert member_id is not None  # filtered by member_id above
        counters[member_id].apply(kind, occurred_at, properties)
        add_to_sums(sums, member_id, daily_delta(kind, occurred_at, store_id, properties))
    for member_id, row in counters_rows.items():
        row.counters = msgspec.to_builtins(counters[member_id])
        row.updated_at = now
    if sums:
        await add_daily_activity(uow, sums)
