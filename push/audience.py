"""Who a segment reaches: its conditions as SQL over the audience profiles, sized live.

Traits come from the profiles (refreshed by the worker, see push.profiles); facts are asked of the
capability that keeps them (purchases and check-ins per store from the timeline, expiring points from the
ledger, reachable devices from accounts), as SQL conditions, so a segment of any size is one query.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, func, select, true

from accounts.directory import member_summaries
from accounts.members import is_active
from accounts.push_addresses import has_reachable_device
from domain.geo import distance_m
from infra.db import UnitOfWork
from points.ledger import expiring_at_least
from points.rules.stages import Stage
from push.errors import InvalidSampleSize, UnknownStore
from push.rules.segments import (
    Condition,
    NearStore,
    PointsExpiring,
    PushPermission,
    Segment,
    StageIn,
    VisitedStore,
)
from push.schemas import SampleMember, SegmentEstimate
from push.tables import AudienceProfile
from stores.service import active_store_ids, store_points
from timeline.segments import FavouriteStoreIs, HealthScoreBetween, LifecycleStageIn, RfmBetween
from timeline.service import visited_store_since
from timeline.traits import LifecycleStage

SAMPLE_SIZE = 20
P = AudienceProfile


async def check_stores_exist(uow: UnitOfWork, segment: Segment) -> None:
    """A new segment names only stores that are open (not archived)."""
    named = segment.store_ids()
    missing = named - await active_store_ids(uow, named)
    if missing:
        raise UnknownStore(store_ids=sorted(str(store_id) for store_id in missing))


async def _condition(uow: UnitOfWork, condition: Condition, now: datetime) -> ColumnElement[bool]:
    if isinstance(condition, LifecycleStageIn):
        return P.lifecycle_stage.in_([stage.value for stage in condition.in_])
    if isinstance(condition, HealthScoreBetween):
        return P.health_score.between(condition.min, condition.max)
    if isinstance(condition, RfmBetween):
        return getattr(P, condition.score).between(condition.min, condition.max)  # type: ignore[no-any-return]
    if isinstance(condition, StageIn):
        return P.stage.in_([stage.value for stage in condition.in_])
    if isinstance(condition, FavouriteStoreIs):
        return P.favourite_store_id == condition.store_id
    if isinstance(condition, VisitedStore):
        since = (now - timedelta(days=condition.within_days)).date()
        return visited_store_since(P.member_id, condition.store_id, since)
    if isinstance(condition, NearStore):
        return P.favourite_store_id.in_(await _stores_near(uow, condition.store_id, condition.within_km))
    if isinstance(condition, PointsExpiring):
        return expiring_at_least(
            P.member_id, condition.min_points, now, timedelta(days=condition.within_days)
        )
    if isinstance(condition, PushPermission):
        reachable = has_reachable_device(P.member_id)
        return reachable if condition.granted else ~reachable
    raise TypeError(f"no SQL for {type(condition).__name__}")


async def _stores_near(uow: UnitOfWork, store_id: uuid.UUID, within_km: float) -> list[uuid.UUID]:
    points = await store_points(uow)
    centre = points.get(store_id)
    if centre is None:
        return []  # archived since the segment was saved: nobody is near a store that is gone
    return [other for other, point in points.items() if distance_m(centre, point) <= within_km * 1000]


async def where(uow: UnitOfWork, segment: Segment, now: datetime) -> list[ColumnElement[bool]]:
    """The segment as SQL conditions on the audience profiles (erased members never in it)."""
    conditions = [is_active(P.member_id)]
    for condition in segment.all:
        conditions.append(await _condition(uow, condition, now))
    return conditions


async def _audience(uow: UnitOfWork, segment: Segment, now: datetime) -> list[ColumnElement[bool]]:
    """The members a segment asked about in the console reaches, as SQL conditions (its stores checked)."""
    await check_stores_exist(uow, segment)
    return await where(uow, segment, now)


def _first_members(conditions: list[ColumnElement[bool]], size: int) -> Select[uuid.UUID]:
    """The first `size` members of an audience in id order: a stable sample, the same on every call."""
    return select(P.member_id).where(*conditions).order_by(P.member_id).limit(size)


async def estimate(uow: UnitOfWork, segment: Segment, now: datetime) -> SegmentEstimate:
    conditions = await _audience(uow, segment, now)
    size, oldest = (
        await uow.session.execute(select(func.count(), func.min(P.refreshed_at)).where(*conditions))
    ).one()
    first = (await uow.session.execute(_first_members(conditions, SAMPLE_SIZE))).scalars()
    return SegmentEstimate(size=int(size), sample=list(first), profiles_as_of=oldest)


async def sample(
    uow: UnitOfWork, segment: Segment, now: datetime, size: int = SAMPLE_SIZE
) -> list[SampleMember]:
    """Up to `size` (at most 20) members of the segment, the same ones `estimate` lists, with who they
    are and the traits their profile holds. InvalidSampleSize outside 1..20."""
    if not 1 <= size <= SAMPLE_SIZE:
        raise InvalidSampleSize(f"a sample has 1 to {SAMPLE_SIZE} members")
    conditions = await _audience(uow, segment, now)
    rows = list(
        await uow.session.execute(
            _first_members(conditions, size).add_columns(P.lifecycle_stage, P.stage, P.health_score)
        )
    )
    who = {summary.id: summary for summary in await member_summaries(uow, [row[0] for row in rows])}
    return [
        SampleMember(
            member_id=member_id,
            display_name=who[member_id].display_name,
            card_number=who[member_id].card_number,
            lifecycle_stage=LifecycleStage(lifecycle_stage),
            stage=Stage(stage),
            health_score=health_score,
        )
        for member_id, lifecycle_stage, stage, health_score in rows
        if member_id in who  # erased since the query above: no longer anyone to show
    ]


class AudienceMember:
    """A member a campaign reaches, with what planning their send needs."""

    __slots__ = ("engagement_hours", "member_id", "time_zone")

    def __init__(self, member_id: uuid.UUID, time_zone: str, engagement_hours: list[int]) -> None:
        self.member_id, self.time_zone, self.engagement_hours = member_id, time_zone, engagement_hours


async def audience_page(
    uow: UnitOfWork, segment: Segment, after: uuid.UUID | None, limit: int, now: datetime
) -> list[AudienceMember]:
    """The next `limit` members of the segment in id order after `after` (keyset paging)."""
    conditions = await where(uow, segment, now)
    query = select(P.member_id, P.time_zone, P.engagement_hours).where(
        *conditions, P.member_id > after if after is not None else true()
    )
    rows = await uow.session.execute(query.order_by(P.member_id).limit(limit))
    return [AudienceMember(member_id, zone, list(hours)) for member_id, zone, hours in rows]
