"""The points program at a glance for the console: what moved in a period, per local day, what members
hold now (the program's liability), and how many members hold each stage. Read-only, set-based SQL.

Flows are read from the ledger's entries by when they happened (`occurred_at`: the sale's time for
earning and redeeming, the lot's expiry for expiring), so a late-posted sale counts on its sale's day.
The entries have no index on that time, so a period's figures scan the ledger's entries once.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

import msgspec
from sqlalchemy import DateTime, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT

from accounts.members import is_active
from accounts.overview import count_members
from domain.periods import checked_period, day_starts, local_days
from infra.db import UnitOfWork
from points.program import Program
from points.rules.stages import Stage, period_start, previous_period_start
from points.tables import EntryKind, MemberMiles, PointAccount, PointEntry, PointLot


class DailyPoints(msgspec.Struct, frozen=True):
    day: date  # local calendar day in the zone asked for
    issued: int
    redeemed: int
    expired: int


class PointsOverview(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    end: datetime
    time_zone: str
    # Flows in [start, end), all as positive numbers of points.
    issued: int  # earned (purchases, offers) and stage bonuses, before any of it repaid a debt
    redeemed: int  # paid at the register
    returned: int  # redeemed points given back by refunds
    reversed: int  # earned points taken back by refunds (or a lost stage bonus) from points held
    clawed_back: int  # taken back but already spent: recorded as owed, repaid from later points
    repaid: int  # later points that paid off what was owed
    expired: int
    daily: list[DailyPoints]  # every local day of the period, zeros included
    # Now (`as_of`), members not erased: points held and what they are worth.
    as_of: datetime
    held_available: int
    held_pending: int
    held_points: int  # available + pending, not expired: the outstanding liability
    liability_minor: int  # held_points at the program's point value, in the currency's minor units
    currency: str
    owed_points: int  # what members owe (clawed back, not yet repaid): not netted off the liability


class StageCount(msgspec.Struct, frozen=True):
    stage: Stage
    members: int


_FLOWS = {
    EntryKind.EARN: "issued",
    EntryKind.BONUS: "issued",
    EntryKind.REDEEM: "redeemed",
    EntryKind.RETURN: "returned",
    EntryKind.REVERSE: "reversed",
    EntryKind.OWED: "clawed_back",
    EntryKind.REPAY: "repaid",
    EntryKind.EXPIRE: "expired",
}


async def points_overview(
    uow: UnitOfWork, program: Program, start: datetime, end: datetime, time_zone: str, now: datetime
) -> PointsOverview:
    """Points issued, redeemed, returned, reversed, clawed back, repaid and expired in `[start, end)`,
    with a daily series in `time_zone`; and the points members hold as of `now` (three queries).

    InvalidPeriod for a period that ends before it starts or spans more than 400 days.
    """
    start, end = checked_period(start, end, time_zone)
    flows = await _flows_per_day(uow, start, end, time_zone)
    totals: dict[str, int] = defaultdict(int)
    for per_flow in flows.values():
        for flow, points in per_flow.items():
            totals[flow] += points
    available, pending = await _held(uow, now)
    owed = await uow.session.scalar(
        select(func.coalesce(func.sum(PointAccount.owed), 0)).where(is_active(PointAccount.member_id))
    )
    return PointsOverview(
        start=start,
        end=end,
        time_zone=time_zone,
        issued=totals["issued"],
        redeemed=totals["redeemed"],
        returned=totals["returned"],
        reversed=totals["reversed"],
        clawed_back=totals["clawed_back"],
        repaid=totals["repaid"],
        expired=totals["expired"],
        daily=[
            DailyPoints(
                day=day,
                issued=flows.get(day, {}).get("issued", 0),
                redeemed=flows.get(day, {}).get("redeemed", 0),
                expired=flows.get(day, {}).get("expired", 0),
            )
            for day in local_days(start, end, time_zone)
        ],
        as_of=now,
        held_available=available,
        held_pending=pending,
        held_points=available + pending,
        liability_minor=(available + pending) * program.earning.point_value_minor,
        currency=program.currency,
        owed_points=int(owed or 0),
    )


async def _flows_per_day(
    uow: UnitOfWork, start: datetime, end: datetime, time_zone: str
) -> dict[date, dict[str, int]]:
    """Per local day, each flow's points as a positive number."""
    days = local_days(start, end, time_zone)
    starts = literal(day_starts(start, end, time_zone), ARRAY(DateTime(timezone=True)))
    entries = (
        select(
            func.width_bucket(PointEntry.occurred_at, starts).label("day"),
            PointEntry.kind.label("kind"),
            PointEntry.points.label("points"),
            PointEntry.owed_change.label("owed_change"),
        )
        .where(PointEntry.occurred_at >= start, PointEntry.occurred_at < end)
        .subquery()
    )
    rows = await uow.session.execute(
        select(
            entries.c.day, entries.c.kind, func.sum(entries.c.points), func.sum(entries.c.owed_change)
        ).group_by(entries.c.day, entries.c.kind)
    )
    flows: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for day, kind, points, owed_change in rows:
        # An owed entry holds no points (its amount is in owed_change); every other flow is its points.
        amount = int(owed_change) if kind is EntryKind.OWED else abs(int(points))
        flows[days[int(day) - 1]][_FLOWS[kind]] += amount
    return flows


async def _held(uow: UnitOfWork, now: datetime) -> tuple[int, int]:
    """Points available and pending now, over every member not erased (the open lots)."""
    available, pending = (
        await uow.session.execute(
            select(
                func.coalesce(func.sum(PointLot.remaining).filter(PointLot.available_at <= now), 0),
                func.coalesce(func.sum(PointLot.remaining).filter(PointLot.available_at > now), 0),
            ).where(PointLot.remaining > 0, PointLot.expires_at > now, is_active(PointLot.member_id))
        )
    ).one()
    return int(available), int(pending)


async def stage_distribution(uow: UnitOfWork, program: Program, now: datetime) -> list[StageCount]:
    """Members (not erased) per stage held now, every stage of the program listed (two queries).

    A member's stage comes from the better of this and the previous period's miles (points.miles
    `stages_of`), i.e. from the larger of the two; `width_bucket` over the thresholds' miles finds the
    highest threshold it reaches. Members without miles in either period hold the first stage.
    """
    thresholds = program.stages.thresholds
    best = (
        select(func.max(MemberMiles.miles).label("miles"))
        .where(
            MemberMiles.period_start.in_(
                [period_start(now, program.stages), previous_period_start(now, program.stages)]
            ),
            is_active(MemberMiles.member_id),
        )
        .group_by(MemberMiles.member_id)
        .subquery()
    )
    reached = literal([t.miles for t in thresholds], ARRAY(BIGINT))
    bucket = select(func.width_bucket(best.c.miles, reached).label("bucket")).subquery()
    rows = await uow.session.execute(select(bucket.c.bucket, func.count()).group_by(bucket.c.bucket))
    counts = {stage: 0 for stage in (t.stage for t in thresholds)}
    for index, members in rows:
        # Bucket i holds miles from threshold i (1-based) up to the next; 0 would be negative miles.
        counts[thresholds[max(int(index), 1) - 1].stage] += int(members)
    counts[thresholds[0].stage] += max(0, await count_members(uow) - sum(counts.values()))
    return [StageCount(stage=stage, members=members) for stage, members in counts.items()]
