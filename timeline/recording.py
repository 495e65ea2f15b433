"""Recording interactions: the event in the caller's transaction, its trait inputs folded after commit.

Every capability records through `record` / `record_many` inside the unit of work of the fact it
describes, so a fact without its event (or an event without its fact) cannot be committed. A use case
that writes its fact in one statement includes `RECORDING` in it instead (see `recording`).

The member's trait inputs (counters and daily activity) are derived data, rebuildable from the events
(timeline.rebuild). Folding them in the fact's transaction locked and rewrote the member's counters on
every purchase; instead the event is queued in `pending_trait_folds` with it, and `fold_pending` (a
worker job) folds queued events and deletes their queue rows in one transaction: an event is folded
exactly once, whether a worker crashes mid-way (its transaction rolls back, the rows stay queued) or
several run at once (each claims rows the others have not locked).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import msgspec
from sqlalchemy import Row, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.ids import new_id
from domain.interactions import OUTREACH_KINDS, PHASE_OF_KIND, Channel, InteractionKind, SubjectType
from infra.db import Database, UnitOfWork
from timeline.rules import EventDraft, Properties
from timeline.schemas import Subject, TimelineEntry
from timeline.tables import NO_STORE, MemberDailyActivity, MemberTraitCounters, TimelineEvent
from timeline.traits import DailyDelta, TraitCounters, daily_delta

# (member, UTC day, store key) -> column sums
ActivitySums = dict[tuple[uuid.UUID, date, uuid.UUID], dict[str, int]]
_ACTIVITY_SUMS = (
    "interactions",
    "purchases",
    "spend_minor",
    "refunded_minor",
    "check_ins",
    "app_opens",
    "push_opens",
)


def recording_sql(only_if: str = "true") -> str:
    """SQL: data-modifying CTEs that record the events and queue their folds, from two JSON arrays of
    rows (`recording` makes them; the columns of each row are those of its table), if `only_if` holds
    (a condition, e.g. on an earlier CTE: an event recorded only with the fact it describes)."""
    return f"""
recorded_events AS (
    INSERT INTO timeline_events
    SELECT * FROM jsonb_populate_recordset(NULL::timeline_events, CAST(:timeline_events AS jsonb))
    WHERE {only_if}
),
queued_folds AS (
    INSERT INTO pending_trait_folds
    SELECT * FROM jsonb_populate_recordset(NULL::pending_trait_folds, CAST(:trait_folds AS jsonb))
    WHERE {only_if}
)"""  # noqa: S608 - constant SQL; values are bound


RECORDING = recording_sql()
_RECORD = text(f"WITH {RECORDING} SELECT 1")

FOLDS_PER_BATCH = 2000


@dataclass(frozen=True)
class Recording:
    """Events ready to record: their entries as the timeline will show them, and `RECORDING`'s parameters."""

    entries: list[TimelineEntry]
    params: dict[str, str]


def recording(
    drafts: Sequence[EventDraft], recorded_at: datetime, ids: Sequence[uuid.UUID] | None = None
) -> Recording:
    """The events of `drafts` (with `ids`, or new ones) and their queued folds, for `RECORDING`."""
    event_ids = list(ids) if ids is not None else [new_id() for _ in drafts]
    events, folds = [], []
    for event_id, draft in zip(event_ids, drafts, strict=True):
        events.append(
            _EventRow(
                id=event_id,
                occurred_at=draft.occurred_at,
                recorded_at=recorded_at,
                member_id=draft.member_id,
                kind=draft.kind,
                channel=draft.channel,
                store_id=draft.store_id,
                subject_type=draft.subject_type,
                subject_ref=draft.subject_ref,
                properties=draft.properties,
            )
        )
        # Outreach (a push sent, an offer decided) changes no trait: folding it would do nothing.
        if draft.member_id is not None and draft.kind not in OUTREACH_KINDS:
            folds.append(
                {"event_id": event_id, "occurred_at": draft.occurred_at, "member_id": draft.member_id}
            )
    return Recording(
        entries=[entry_of(event) for event in events],
        params={
            "timeline_events": msgspec.json.encode(events).decode(),
            "trait_folds": msgspec.json.encode(folds).decode(),
        },
    )


async def record(uow: UnitOfWork, draft: EventDraft, recorded_at: datetime) -> TimelineEntry:
    """Record one interaction in the caller's transaction."""
    (entry,) = await record_many(uow, [draft], recorded_at)
    return entry


async def record_many(
    uow: UnitOfWork,
    drafts: Sequence[EventDraft],
    recorded_at: datetime,
    ids: Sequence[uuid.UUID] | None = None,
) -> list[TimelineEntry]:
    """Record interactions (and queue them for their members' traits) in the caller's transaction."""
    if not drafts:
        return []
    prepared = recording(drafts, recorded_at, ids)
    await uow.session.execute(_RECORD, prepared.params)
    return prepared.entries


class _EventRow(msgspec.Struct, frozen=True):
    """A `timeline_events` row about to be written (encoded as one JSON object of its columns)."""

    id: uuid.UUID
    occurred_at: datetime
    recorded_at: datetime
    member_id: uuid.UUID | None
    kind: InteractionKind
    channel: Channel
    store_id: uuid.UUID | None
    subject_type: SubjectType | None
    subject_ref: str | None
    properties: Properties


def entry_of(event: TimelineEvent | Row[Any] | _EventRow) -> TimelineEntry:
    subject = None
    if event.subject_type is not None and event.subject_ref is not None:
        subject = Subject(type=event.subject_type, id=event.subject_ref)
    return TimelineEntry(
        id=event.id,
        kind=event.kind,
        phase=PHASE_OF_KIND[event.kind],
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        channel=event.channel,
        member_id=event.member_id,
        store_id=event.store_id,
        subject=subject,
        properties=event.properties,
    )


# Queued events, oldest queued first, with what folding needs; locked, skipping rows another worker
# holds. An event gone from the log (its partition archived) is dequeued without folding. The queue rows
# are claimed first and joined to the log afterwards (one index probe each, partitions pruned at run
# time): joined in one step, the planner could walk the whole log in id order to find the newest events
# (5 s per batch measured at 10 million events, docs/scaling.md).
_CLAIM_FOLDS = text(
    """
    WITH claimed AS (
        SELECT event_id, occurred_at, member_id FROM pending_trait_folds
        ORDER BY event_id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    SELECT c.event_id, c.member_id, e.kind, e.occurred_at, e.recorded_at, e.store_id, e.properties
    FROM claimed c
    LEFT JOIN timeline_events e ON e.id = c.event_id AND e.occurred_at = c.occurred_at
    """
)
# The members of claimed events, held until commit so that an erasure (which drops a member's trait
# inputs and queued events) waits for the fold or the fold sees the member erased. A member locked by
# anyone else (an erasure under way) is skipped: waiting for it while holding its queued events, which
# the erasure deletes, would deadlock; its events stay queued for the next run.
_MEMBERS_OF_FOLDS = text(
    """
    SELECT id, erased_at IS NOT NULL AS erased FROM members WHERE id = ANY(CAST(:ids AS uuid[]))
    ORDER BY id FOR KEY SHARE SKIP LOCKED
    """
)
_DEQUEUE = text("DELETE FROM pending_trait_folds WHERE event_id = ANY(CAST(:ids AS uuid[]))")


@dataclass(frozen=True)
class _Fold:
    member_id: uuid.UUID
    kind: InteractionKind
    occurred_at: datetime
    recorded_at: datetime
    store_id: uuid.UUID | None
    properties: Properties


async def fold_pending(db: Database, batch: int = FOLDS_PER_BATCH) -> int:
    """Fold every queued event into its member's trait inputs (the worker's job); returns how many
    left the queue (an erased member's, or one gone from the log, leave it without being folded).

    Batches of events, each in its own transaction. Safe to run on several workers at once and to rerun.
    """
    total = 0
    while True:
        async with db.unit_of_work() as uow:
            dequeued = await fold_claimed(uow, batch)
        total += dequeued
        if dequeued < batch:
            return total


async def fold_claimed(uow: UnitOfWork, limit: int) -> int:
    """Claim up to `limit` queued events, fold them and dequeue them, in the caller's transaction;
    returns how many were dequeued (events of a member someone else holds locked stay queued)."""
    claimed = (await uow.session.execute(_CLAIM_FOLDS, {"limit": limit})).all()
    if not claimed:
        return 0
    members = sorted({row.member_id for row in claimed})
    held = await uow.session.execute(_MEMBERS_OF_FOLDS, {"ids": members})
    erased: dict[uuid.UUID, bool] = {member_id: gone for member_id, gone in held}  # members we hold
    claimed = [row for row in claimed if row.member_id in erased]
    active = {member_id for member_id, gone in erased.items() if not gone}
    folds = [
        _Fold(
            row.member_id,
            InteractionKind(row.kind),
            row.occurred_at,
            row.recorded_at,
            row.store_id,
            row.properties,
        )
        for row in claimed
        if row.kind is not None and row.member_id in active
    ]
    await _fold_into_counters(uow, folds)
    await _fold_into_daily_activity(uow, folds)
    await uow.session.execute(_DEQUEUE, {"ids": [row.event_id for row in claimed]})
    return len(claimed)


async def _fold_into_counters(uow: UnitOfWork, folds: Sequence[_Fold]) -> None:
    """`updated_at` stays when the member's latest interaction was recorded (not when it was folded):
    the console finds recently active members by it (timeline.overview)."""
    by_member: dict[uuid.UUID, list[_Fold]] = defaultdict(list)
    for fold in folds:
        by_member[fold.member_id].append(fold)
    if not by_member:
        return
    member_ids = sorted(by_member)  # one lock order everywhere, so concurrent writers cannot deadlock
    latest = {m: max(fold.recorded_at for fold in by_member[m]) for m in member_ids}
    empty = msgspec.to_builtins(TraitCounters())
    await uow.session.execute(
        pg_insert(MemberTraitCounters).on_conflict_do_nothing(),
        [{"member_id": m, "counters": empty, "updated_at": latest[m]} for m in member_ids],
    )
    # Read under the lock: a rebuild that held these rows before us has rewritten them.
    locked = await uow.session.execute(
        select(MemberTraitCounters)
        .where(MemberTraitCounters.member_id.in_(member_ids))
        .order_by(MemberTraitCounters.member_id)
        .with_for_update()
    )
    for row in locked.scalars():
        counters = msgspec.convert(row.counters, TraitCounters)
        for fold in by_member[row.member_id]:
            counters.apply(fold.kind, fold.occurred_at, fold.properties)
        row.counters = msgspec.to_builtins(counters)
        row.updated_at = max(row.updated_at, latest[row.member_id])


async def _fold_into_daily_activity(uow: UnitOfWork, folds: Sequence[_Fold]) -> None:
    sums: ActivitySums = {}
    for fold in folds:
        add_to_sums(
            sums, fold.member_id, daily_delta(fold.kind, fold.occurred_at, fold.store_id, fold.properties)
        )
    if sums:
        await add_daily_activity(uow, sums)


# A member's trait inputs as they stand with every recorded event: the stored counters and daily rows
# with the events still queued for folding added, all read in one statement (one snapshot), so a fold
# committing meanwhile cannot make an event count twice or not at all.
_TRAIT_INPUTS = text(
    """
    SELECT given.member_id,
        (SELECT counters FROM member_trait_counters c WHERE c.member_id = given.member_id) AS counters,
        (SELECT coalesce(json_agg(a), '[]') FROM member_daily_activity a
         WHERE a.member_id = given.member_id AND a.day > :since) AS activity,
        (SELECT coalesce(json_agg(json_build_object(
                    'kind', e.kind, 'occurred_at', e.occurred_at, 'store_id', e.store_id,
                    'properties', e.properties)), '[]')
         FROM pending_trait_folds f
         JOIN timeline_events e ON e.id = f.event_id AND e.occurred_at = f.occurred_at
         WHERE f.member_id = given.member_id) AS queued
    FROM unnest(CAST(:member_ids AS uuid[])) AS given(member_id)
    """
)


class _StoredActivity(msgspec.Struct):
    day: date
    store_key: uuid.UUID
    interactions: int
    purchases: int
    spend_minor: int
    refunded_minor: int
    check_ins: int
    app_opens: int
    push_opens: int


class _QueuedEvent(msgspec.Struct):
    kind: InteractionKind
    occurred_at: datetime
    store_id: uuid.UUID | None
    properties: Properties


async def trait_inputs(
    uow: UnitOfWork, member_ids: Sequence[uuid.UUID], since: date
) -> dict[uuid.UUID, tuple[TraitCounters, list[DailyDelta]]]:
    """Each member's counters and daily rows after `since`, with their queued events folded in (one
    statement): what the worker's fold will make of them, so a read is never behind the timeline."""
    rows = await uow.session.execute(_TRAIT_INPUTS, {"member_ids": list(member_ids), "since": since})
    inputs = {}
    for member_id, stored_counters, stored_activity, queued in rows:
        counters = msgspec.convert(stored_counters or {}, TraitCounters)
        activity = [activity_of(row) for row in msgspec.convert(stored_activity, list[_StoredActivity])]
        for event in msgspec.convert(queued, list[_QueuedEvent]):
            counters.apply(event.kind, event.occurred_at, event.properties)
            delta = daily_delta(event.kind, event.occurred_at, event.store_id, event.properties)
            if delta.day > since:
                activity.append(delta)
        inputs[member_id] = (counters, activity)
    return inputs


def add_to_sums(sums: ActivitySums, member_id: uuid.UUID, delta: DailyDelta) -> None:
    total = sums.setdefault(
        (member_id, delta.day, delta.store_id or NO_STORE), dict.fromkeys(_ACTIVITY_SUMS, 0)
    )
    for column in _ACTIVITY_SUMS:
        total[column] += getattr(delta, column)


def _activity_upsert() -> Any:
    statement = pg_insert(MemberDailyActivity)
    return statement.on_conflict_do_update(
        index_elements=["member_id", "day", "store_key"],
        set_={
            column: getattr(MemberDailyActivity, column) + getattr(statement.excluded, column)
            for column in _ACTIVITY_SUMS
        },
    )


# Built once: composing it per call was a fifth of the cost of recording a purchase.
_ADD_ACTIVITY = _activity_upsert()


async def add_daily_activity(uow: UnitOfWork, sums: ActivitySums) -> None:
    """Add per-(member, day, store) sums to the stored rows, creating rows that do not exist yet."""
    rows = [
        {"member_id": member_id, "day": day, "store_key": store_key, **values}
        for (member_id, day, store_key), values in sorted(sums.items())  # a fixed lock order again
    ]
    await uow.session.execute(_ADD_ACTIVITY, rows)


def activity_of(row: MemberDailyActivity | _StoredActivity) -> DailyDelta:
    return DailyDelta(
        day=row.day,
        store_id=None if row.store_key == NO_STORE else row.store_key,
        **{column: getattr(row, column) for column in _ACTIVITY_SUMS},
    )
