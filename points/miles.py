"""Miles per yearly period, stages, and the stage bonuses a member holds in a period.

A bonus is held while the period's miles reach its threshold (points.rules.stages.bonus_changes): paid
when the threshold is reached, taken back when a return drops the miles below it, paid again (once)
when miles cross it again. `member_miles.bonus_stages` lists the bonuses held; each bonus entry in the
ledger names its stage and period, so a reversal takes the points back from the bonus's own lot first.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.interactions import Channel, InteractionKind
from infra.db import UnitOfWork
from points import ledger
from points.program import Program
from points.rules.stages import (
    Stage,
    bonus_changes,
    bonus_points_of,
    current_stage,
    period_start,
    previous_period_start,
)
from points.tables import EntryKind, MemberMiles, PointAccount, PointEntry
from timeline.recording import record_many
from timeline.rules import EventDraft


async def _period_row(uow: UnitOfWork, member_id: uuid.UUID, start: datetime) -> MemberMiles:
    await uow.session.execute(
        pg_insert(MemberMiles)
        .values(member_id=member_id, period_start=start, miles=0, bonus_stages=[])
        .on_conflict_do_nothing()
    )
    return (
        await uow.session.execute(
            select(MemberMiles)
            .where(MemberMiles.member_id == member_id, MemberMiles.period_start == start)
            .with_for_update()
        )
    ).scalar_one()


async def change_miles(
    uow: UnitOfWork,
    program: Program,
    account: PointAccount,
    miles: int,
    earned_at: datetime,
    now: datetime,
) -> list[Stage]:
    """Add (or, for a return, take away) miles in the period of `earned_at`, then pay or take back the
    stage bonuses so the member holds exactly those their miles reach. Returns the stages newly reached.

    Miles never go below zero. The caller holds the member's account lock.
    """
    if miles == 0:
        return []
    start = period_start(earned_at, program.stages)
    row = await _period_row(uow, account.member_id, start)
    row.miles = max(0, row.miles + miles)
    held = [Stage(stage) for stage in row.bonus_stages]
    changes = bonus_changes(row.miles, held, program.stages)
    events: list[EventDraft] = []
    for stage in changes.take_back:
        points = await _take_back_bonus(uow, account, stage, start, program, now)
        events.append(
            _event(account, InteractionKind.POINTS_ADJUSTED, now, stage, points, "stage_bonus_reversed")
        )
    for threshold in changes.grant:
        if threshold.bonus_points:
            await ledger.earn(
                uow,
                account,
                threshold.bonus_points,
                kind=EntryKind.BONUS,
                reason=f"Welcome to {threshold.stage.value.title()}: {threshold.bonus_points} bonus points",
                earned_at=now,
                available_at=now,
                expires_at=program.expires_at(now),
                now=now,
                details={"stage": threshold.stage.value, "period_start": start.isoformat()},
            )
        events.append(
            _event(account, InteractionKind.STAGE_REACHED, now, threshold.stage, threshold.bonus_points)
        )
    kept = [stage for stage in held if stage not in changes.take_back]
    row.bonus_stages = [stage.value for stage in [*kept, *(t.stage for t in changes.grant)]]
    await record_many(uow, events, now)
    return [threshold.stage for threshold in changes.grant]


async def _take_back_bonus(
    uow: UnitOfWork, account: PointAccount, stage: Stage, start: datetime, program: Program, now: datetime
) -> int:
    """Reverse the bonus paid for `stage` in the period starting at `start`; returns its points."""
    paid = (
        await uow.session.execute(
            select(PointEntry.points, PointEntry.lot_id)
            .where(
                PointEntry.member_id == account.member_id,
                PointEntry.kind == EntryKind.BONUS,
                PointEntry.details["stage"].astext == stage.value,
                PointEntry.details["period_start"].astext == start.isoformat(),
            )
            .order_by(PointEntry.id.desc())
            .limit(1)
        )
    ).one_or_none()
    # A bonus paid before bonuses named their stage is taken back at the program's current amount.
    points, lot_id = paid if paid is not None else (bonus_points_of(stage, program.stages), None)
    if points:
        await ledger.take_back(
            uow,
            account,
            points,
            own_lots=[lot_id] if lot_id is not None else [],
            reason=f"{stage.value.title()} bonus taken back: a return took this period's miles below it",
            occurred_at=now,
            now=now,
        )
    return int(points)


def _event(
    account: PointAccount,
    kind: InteractionKind,
    now: datetime,
    stage: Stage,
    points: int,
    reason: str | None = None,
) -> EventDraft:
    properties: dict[str, str | int] = {"stage": stage.value, "bonus_points": points}
    if reason is not None:
        properties["reason"] = reason
    return EventDraft(
        member_id=account.member_id,
        kind=kind,
        occurred_at=now,
        channel=Channel.SYSTEM,
        properties=dict(properties),
    )


async def miles_of(uow: UnitOfWork, program: Program, member_id: uuid.UUID, now: datetime) -> tuple[int, int]:
    """Miles of the current and of the previous period."""
    this_start = period_start(now, program.stages)
    previous_start = previous_period_start(now, program.stages)
    rows = await uow.session.execute(
        select(MemberMiles.period_start, MemberMiles.miles).where(
            MemberMiles.member_id == member_id, MemberMiles.period_start.in_([this_start, previous_start])
        )
    )
    by_start = {start: miles for start, miles in rows}
    return by_start.get(this_start, 0), by_start.get(previous_start, 0)


async def stage_of(uow: UnitOfWork, program: Program, member_id: uuid.UUID, now: datetime) -> Stage:
    return (await stages_of(uow, program, [member_id], now))[member_id]


async def stages_of(
    uow: UnitOfWork, program: Program, member_ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, Stage]:
    """Each member's stage now (from this and the previous period's miles), for many members at once."""
    this_start = period_start(now, program.stages)
    previous_start = previous_period_start(now, program.stages)
    rows = await uow.session.execute(
        select(MemberMiles.member_id, MemberMiles.period_start, MemberMiles.miles).where(
            MemberMiles.member_id.in_(member_ids), MemberMiles.period_start.in_([this_start, previous_start])
        )
    )
    miles: dict[uuid.UUID, dict[datetime, int]] = {}
    for member_id, start, count in rows:
        miles.setdefault(member_id, {})[start] = count
    return {
        member_id: current_stage(
            miles.get(member_id, {}).get(this_start, 0),
            miles.get(member_id, {}).get(previous_start, 0),
            program.stages,
        )
        for member_id in member_ids
    }
