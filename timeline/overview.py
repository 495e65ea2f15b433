"""Figures over everyone's timeline for the console: interactions per local day, who was active lately,
how many members are in each lifecycle stage. Read-only, set-based SQL: no member is loaded one by one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import (
    ColumnElement,
    ColumnExpressionArgument,
    DateTime,
    case,
    column,
    exists,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY

from domain.interactions import InteractionKind
from domain.periods import checked_period, day_starts, local_days
from infra.db import UnitOfWork
from timeline.population import population_hours
from timeline.tables import MemberDailyActivity, MemberTraitCounters, TimelineEvent
from timeline.traits import (
    LifecycleStage,
    MemberTraits,
    TraitCounters,
    TraitPolicy,
    compute_traits,
    daily_delta,
)

MemberCondition = Callable[[ColumnExpressionArgument[uuid.UUID]], ColumnElement[bool]]


class DailyCount(msgspec.Struct, frozen=True):
    day: date  # local calendar day in the zone asked for
    kind: InteractionKind
    count: int


async def daily_interactions(
    uow: UnitOfWork, kinds: Sequence[InteractionKind], start: datetime, end: datetime, time_zone: str
) -> list[DailyCount]:
    """How many interactions of each kind happened on each local day of `[start, end)`, anonymous ones
    (a sale without a member code) included; every day and kind is listed, zeros too, by day then in
    the order of `kinds`. Only the month partitions of the period are read."""
    start, end = checked_period(start, end, time_zone)
    wanted = list(dict.fromkeys(kinds))
    if not wanted:
        return []
    days = local_days(start, end, time_zone)
    starts = literal(day_starts(start, end, time_zone), ARRAY(DateTime(timezone=True)))
    events = (
        select(
            func.width_bucket(TimelineEvent.occurred_at, starts).label("day"),
            TimelineEvent.kind.label("kind"),
        )
        .where(
            TimelineEvent.occurred_at >= start,
            TimelineEvent.occurred_at < end,
            TimelineEvent.kind.in_(wanted),
        )
        .subquery()
    )
    rows = await uow.session.execute(
        select(events.c.day, events.c.kind, func.count()).group_by(events.c.day, events.c.kind)
    )
    counts = {(days[int(day) - 1], kind): int(count) for day, kind, count in rows}
    return [
        DailyCount(day=day, kind=kind, count=counts.get((day, kind), 0)) for day in days for kind in wanted
    ]


def active_since(member_id: ColumnExpressionArgument[uuid.UUID], since: date) -> ColumnElement[bool]:
    """SQL: the member interacted (outreach does not count) on a UTC day after `since`."""
    return exists().where(
        MemberDailyActivity.member_id == member_id,
        MemberDailyActivity.day > since,
        MemberDailyActivity.interactions > 0,
    )


async def recently_active(
    uow: UnitOfWork, since: datetime, limit: int, among: MemberCondition
) -> list[uuid.UUID]:
    """Up to `limit` members meeting `among` with an interaction recorded after `since` (outreach does not
    count), the most recent first.

    Read from when each member's trait counters last changed: one row per member, where the daily
    activity rows would be a scan of every member's days (they have no index by day). A rebuild of the
    traits touches everyone's counters; until members interact again they then all look recent.
    """
    rows = await uow.session.execute(
        select(MemberTraitCounters.member_id)
        .where(MemberTraitCounters.updated_at > since, among(MemberTraitCounters.member_id))
        .order_by(MemberTraitCounters.updated_at.desc(), MemberTraitCounters.member_id)
        .limit(limit)
    )
    return list(rows.scalars())


async def newcomer_traits(uow: UnitOfWork, time_zone: str, now: datetime) -> MemberTraits:
    """The traits of a member who signs up at `now`: all anyone knows of a member with no history."""
    counters = TraitCounters()
    counters.apply(InteractionKind.MEMBER_JOINED, now, {})
    joined = daily_delta(InteractionKind.MEMBER_JOINED, now, None, {})
    return compute_traits(counters, [joined], now, time_zone, await population_hours(uow))


_TIMES = ("joined_at", "first_seen_at", "last_seen_at", "last_visit_at")


async def lifecycle_counts(
    uow: UnitOfWork,
    now: datetime,
    among: MemberCondition,
    policy: TraitPolicy = TraitPolicy(),  # noqa: B008 - immutable
) -> dict[LifecycleStage, int]:
    """Members meeting `among` who have trait counters, per lifecycle stage as of `now` (one query).

    A member without counters (nothing ever recorded) is lapsed by the traits' rule; only the caller,
    who knows the whole membership, can count those.
    """
    counters = (
        func.jsonb_to_record(MemberTraitCounters.counters)
        .table_valued(*(column(name, DateTime(timezone=True)) for name in _TIMES))
        .render_derived(name="counters", with_types=True)
    )
    staged = (
        select(_lifecycle_stage(counters.c, now, policy).label("stage"))
        .select_from(MemberTraitCounters)
        .join(counters, true())
        .where(among(MemberTraitCounters.member_id))
        .subquery()
    )
    rows = await uow.session.execute(select(staged.c.stage, func.count()).group_by(staged.c.stage))
    return {LifecycleStage(name): int(count) for name, count in rows}


def _lifecycle_stage(times: Any, now: datetime, policy: TraitPolicy) -> ColumnElement[str]:
    """timeline.traits `_lifecycle` as SQL over the counters' times, with the same thresholds.

    `(now - t).days <= n` there is `now - t < n + 1 days` here (whole days elapsed, rounded down); a
    member whose counters hold no time is lapsed there and here. Tested against the Python rule.
    """
    at = literal(now, DateTime(timezone=True))
    joined = func.coalesce(times.joined_at, times.first_seen_at)
    visit, seen = times.last_visit_at, times.last_seen_at
    is_new = joined.is_not(None) & (at - joined <= timedelta(days=policy.new_member_days))

    def within(moment: ColumnElement[datetime], days: int) -> ColumnElement[bool]:
        return moment.is_not(None) & (at - moment < timedelta(days=days + 1))

    stage: ColumnElement[str] = case(
        (is_new, LifecycleStage.NEW.value),
        (within(visit, policy.active_days), LifecycleStage.ACTIVE.value),
        (within(visit, policy.at_risk_days), LifecycleStage.AT_RISK.value),
        (visit.is_(None) & within(seen, policy.seen_keeps_at_risk_days), LifecycleStage.AT_RISK.value),
        else_=LifecycleStage.LAPSED.value,
    )
    return stage
