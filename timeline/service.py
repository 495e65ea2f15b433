"""Timeline use cases: app event batches, reading timelines and store activity, member traits, erasure."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, ColumnExpressionArgument, Select, delete, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.ids import new_id
from domain.interactions import OUTREACH_KINDS, Channel, InteractionKind, kinds_in_phase
from domain.pagination import decode_time_cursor, encode_time_cursor
from infra.db import UnitOfWork
from stores.service import check_store_known
from stores.tables import Store
from timeline.errors import InvalidTimeRange
from timeline.population import population_hours
from timeline.recording import entry_of, record_many, trait_inputs
from timeline.rules import REJECTION_DETAIL, EventDraft, EventRejection, client_event_rejection
from timeline.schemas import (
    BatchResult,
    ClientEvent,
    EventBatch,
    EventError,
    EventResult,
    MemberTraitsView,
    TimelineFilter,
    TimelinePage,
)
from timeline.tables import (
    AppEventReceipt,
    MemberDailyActivity,
    MemberTraitCounters,
    PendingTraitFold,
    TimelineEvent,
)
from timeline.traits import MemberTraits, compute_traits

TRAIT_HISTORY = timedelta(days=366)
# Pages are read as plain rows: building ORM objects for them would only cost time.
_EVENT_COLUMNS = select(*TimelineEvent.__table__.columns)


async def ingest_app_events(
    uow: UnitOfWork, member_id: uuid.UUID, batch: EventBatch, now: datetime
) -> BatchResult:
    """Record what the app reports; each event succeeds or fails on its own, and resending is harmless.

    The caller has established that the member is active (accounts.activity).
    """
    rejected = _rejections(batch.events, now)
    await _reject_unknown_stores(uow, batch.events, rejected)
    candidates = {position: event for position, event in enumerate(batch.events) if position not in rejected}
    event_ids = {position: new_id() for position in candidates}
    fresh = await _claim_client_ids(uow, member_id, candidates, event_ids, now)
    earlier = await _earlier_event_ids(
        uow,
        member_id,
        [event.client_event_id for position, event in candidates.items() if position not in fresh],
    )
    await record_many(
        uow, [_draft(member_id, candidates[p]) for p in fresh], now, ids=[event_ids[p] for p in fresh]
    )
    results = []
    for position, event in enumerate(batch.events):
        if position in rejected:
            reason = rejected[position]
            error = EventError(code=reason.value, detail=REJECTION_DETAIL[reason])
            results.append(EventResult(event.client_event_id, "rejected", error=error))
        elif position in fresh:
            results.append(EventResult(event.client_event_id, "recorded", event_id=event_ids[position]))
        else:
            results.append(
                EventResult(event.client_event_id, "duplicate", event_id=earlier[event.client_event_id])
            )
    return BatchResult(
        recorded=len(fresh), duplicates=len(candidates) - len(fresh), rejected=len(rejected), results=results
    )


def _rejections(events: Sequence[ClientEvent], now: datetime) -> dict[int, EventRejection]:
    rejected: dict[int, EventRejection] = {}
    seen: set[str] = set()
    for position, event in enumerate(events):
        reason = client_event_rejection(event.kind, event.occurred_at, event.properties, now)
        if reason is None and event.client_event_id in seen:
            reason = EventRejection.DUPLICATE_IN_BATCH
        seen.add(event.client_event_id)
        if reason is not None:
            rejected[position] = reason
    return rejected


async def _reject_unknown_stores(
    uow: UnitOfWork, events: Sequence[ClientEvent], rejected: dict[int, EventRejection]
) -> None:
    named = {
        event.store_id for p, event in enumerate(events) if p not in rejected and event.store_id is not None
    }
    if not named:
        return
    known = set((await uow.session.execute(select(Store.id).where(Store.id.in_(named)))).scalars())
    for position, event in enumerate(events):
        if position not in rejected and event.store_id is not None and event.store_id not in known:
            rejected[position] = EventRejection.UNKNOWN_STORE


async def _claim_client_ids(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    candidates: dict[int, ClientEvent],
    event_ids: dict[int, uuid.UUID],
    now: datetime,
) -> list[int]:
    """Positions whose client event id this request is the first to deliver.

    A concurrent request with the same ids waits on the receipts' unique key and then sees them as taken.
    """
    if not candidates:
        return []
    claimed = await uow.session.execute(
        pg_insert(AppEventReceipt)
        .values(
            [
                {
                    "member_id": member_id,
                    "client_event_id": event.client_event_id,
                    "event_id": event_ids[p],
                    "received_at": now,
                }
                for p, event in sorted(candidates.items(), key=lambda item: item[1].client_event_id)
            ]
        )
        .on_conflict_do_nothing()
        .returning(AppEventReceipt.client_event_id)
    )
    fresh_ids = set(claimed.scalars())
    return [position for position, event in candidates.items() if event.client_event_id in fresh_ids]


async def _earlier_event_ids(
    uow: UnitOfWork, member_id: uuid.UUID, client_ids: list[str]
) -> dict[str, uuid.UUID]:
    if not client_ids:
        return {}
    rows = await uow.session.execute(
        select(AppEventReceipt.client_event_id, AppEventReceipt.event_id).where(
            AppEventReceipt.member_id == member_id, AppEventReceipt.client_event_id.in_(client_ids)
        )
    )
    return {client_id: event_id for client_id, event_id in rows}


def _draft(member_id: uuid.UUID, event: ClientEvent) -> EventDraft:
    return EventDraft(
        member_id=member_id,
        kind=InteractionKind(event.kind),
        occurred_at=event.occurred_at,
        channel=Channel.APP,
        store_id=event.store_id,
        subject_type=event.subject.type if event.subject else None,
        subject_ref=event.subject.id if event.subject else None,
        properties=event.properties,
    )


async def own_timeline(
    uow: UnitOfWork, member_id: uuid.UUID, filters: TimelineFilter, cursor: str | None, limit: int
) -> TimelinePage:
    """The signed-in member's interactions, newest first (the token already proves the member exists).

    Without the retailer's outreach decisions (messages sent or held back, offers chosen): they are about
    the member, not by them, and would show which control group the member is in."""
    own = _EVENT_COLUMNS.where(
        TimelineEvent.member_id == member_id, TimelineEvent.kind.not_in(sorted(OUTREACH_KINDS))
    )
    return await _page(uow, own, filters, cursor, limit)


async def member_events(
    uow: UnitOfWork, member_id: uuid.UUID, filters: TimelineFilter, cursor: str | None, limit: int
) -> TimelinePage:
    """Every interaction of one member, outreach included, newest first (for staff)."""
    return await _page(
        uow, _EVENT_COLUMNS.where(TimelineEvent.member_id == member_id), filters, cursor, limit
    )


async def store_activity(
    uow: UnitOfWork, store_id: uuid.UUID, filters: TimelineFilter, cursor: str | None, limit: int
) -> TimelinePage:
    """Interactions that happened at one store (including anonymous sales), newest first; an id that is no
    store's is not found rather than an empty page."""
    await check_store_known(uow, store_id)
    return await _page(uow, _EVENT_COLUMNS.where(TimelineEvent.store_id == store_id), filters, cursor, limit)


async def _page(
    uow: UnitOfWork,
    query: Select[Any],
    filters: TimelineFilter,
    cursor: str | None,
    limit: int,
) -> TimelinePage:
    if filters.since is not None and filters.until is not None and filters.since >= filters.until:
        raise InvalidTimeRange()
    kinds = set(filters.kinds) if filters.kinds else None
    if filters.phase is not None:
        kinds = (kinds or set(InteractionKind)) & kinds_in_phase(filters.phase)
    if kinds is not None:
        if not kinds:
            return TimelinePage(items=[], next_cursor=None)
        query = query.where(TimelineEvent.kind.in_(sorted(kinds)))
    if filters.since is not None:
        query = query.where(TimelineEvent.occurred_at >= filters.since)
    if filters.until is not None:
        query = query.where(TimelineEvent.occurred_at < filters.until)
    after = decode_time_cursor(cursor)
    if after is not None:
        at, last_id = after
        query = query.where(
            or_(
                TimelineEvent.occurred_at < at,
                (TimelineEvent.occurred_at == at) & (TimelineEvent.id < last_id),
            )
        )
    query = query.order_by(TimelineEvent.occurred_at.desc(), TimelineEvent.id.desc()).limit(limit + 1)
    events = list(await uow.session.execute(query))
    next_cursor = None
    if len(events) > limit:
        events = events[:limit]
        next_cursor = encode_time_cursor(events[-1].occurred_at, events[-1].id)
    return TimelinePage(items=[entry_of(event) for event in events], next_cursor=next_cursor)


async def member_traits(
    uow: UnitOfWork, member_id: uuid.UUID, time_zone: str, now: datetime
) -> MemberTraitsView:
    """Traits as of `now`: lifetime counters plus at most a year of daily rows, never the raw history."""
    traits = await traits_of_members(uow, {member_id: time_zone}, now)
    return MemberTraitsView(member_id=member_id, time_zone=time_zone, traits=traits[member_id])


async def traits_of_members(
    uow: UnitOfWork, zones: dict[uuid.UUID, str], now: datetime
) -> dict[uuid.UUID, MemberTraits]:
    """Traits of many members at once (two queries), each in their own time zone, with every event
    recorded so far (also those the worker has not folded yet)."""
    inputs = await trait_inputs(uow, list(zones), (now - TRAIT_HISTORY).date())
    population = await population_hours(uow)
    return {
        member_id: compute_traits(*inputs[member_id], now, zone, population)
        for member_id, zone in zones.items()
    }


async def forget_member(uow: UnitOfWork, member_id: uuid.UUID) -> None:
    """Erasure: keep the pseudonymous event skeleton for aggregates, drop what the member wrote or is."""
    await uow.session.execute(
        update(TimelineEvent).where(TimelineEvent.member_id == member_id).values(properties={})
    )
    for table in (AppEventReceipt, PendingTraitFold, MemberDailyActivity, MemberTraitCounters):
        await uow.session.execute(delete(table).where(table.member_id == member_id))


def visited_store_since(
    member_id: ColumnExpressionArgument[uuid.UUID], store_id: uuid.UUID, since: date
) -> ColumnElement[bool]:
    """SQL: the member bought or checked in at the store on a UTC day after `since` (audience segments)."""
    return exists().where(
        MemberDailyActivity.member_id == member_id,
        MemberDailyActivity.store_key == store_id,
        MemberDailyActivity.day > since,
        (MemberDailyActivity.purchases > 0) | (MemberDailyActivity.check_ins > 0),
    )
