"""Miles per yearly period, stages, and the one-off bonus for each stage reached in a period."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.interactions import Channel, InteractionKind
from infra.db import UnitOfWork
from points.ledger import earn
from points.program import Program
from points.stages import Stage, current_stage, period_start, previous_period_start, stages_reached
from points.tables import EntryKind, MemberMiles, PointAccount
from timeline.recording import record
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


async def add_miles(
    uow: UnitOfWork, program: Program, account: PointAccount, miles: int, earned_at: datetime, now: datetime
) -> list[Stage]:
    """Add miles to the period of `earned_at`; grant each newly reached stage's bonus once per period."""
    if miles <= 0:
        return []
    row = await _period_row(uow, account.member_id, period_start(earned_at, program.stages))
    before = row.miles
    row.miles += miles
    reached = []
    for threshold in stages_reached(before, row.miles, program.stages):
        if threshold.stage.value in row.bonus_stages:
            continue  # reached before in this period (then a refund took the miles back)
        row.bonus_stages = [*row.bonus_stages, threshold.stage.value]
        reached.append(threshold.stage)
        if threshold.bonus_points:
            await earn(
                uow,
                account,
                threshold.bonus_points,
                kind=EntryKind.BONUS,
                reason=f"Welcome to {threshold.stage.value.title()}: {threshold.bonus_points} bonus points",
                earned_at=now,
                available_at=now,
                expires_at=program.expires_at(now),
                now=now,
            )
        await record(
            uow,
            EventDraft(
                member_id=account.member_id,
                kind=InteractionKind.STAGE_REACHED,
                occurred_at=now,
                channel=Channel.SYSTEM,
                properties={"stage": threshold.stage.value, "bonus_points": threshold.bonus_points},
            ),
            now,
        )
    return reached


async def remove_miles(
    uow: UnitOfWork, program: Program, member_id: uuid.UUID, miles: int, earned_at: datetime
) -> None:
    """Take back the miles of a returned purchase from the period it was earned in (never below zero)."""
    if miles <= 0:
        return
    row = await _period_row(uow, member_id, period_start(earned_at, program.stages))
    row.miles = max(0, row.miles - miles)


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
    this_period, previous_period = await miles_of(uow, program, member_id, now)
    return current_stage(this_period, previous_period, program.stages)
