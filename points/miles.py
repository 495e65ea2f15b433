"""Miles per yearly period, stages, and the stage bonuses a member holds in a period.

A bonus is held while the period's miles reach its threshold (points.rules.stages.bonus_changes): paid
when the threshold is reached, taken back when a return drops the miles below it, paid again (once)
when miles cross it again. `member_miles.bonus_stages` lists the bonuses held; each bonus entry in the
ledger names its stage and period, so a reversal takes the points back from the bonus's own lot first.

A member's miles rows change only under the member's account lock (points.ledger.lock_account), so a
period read after taking that lock stays as read until the transaction ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import msgspec
from sqlalchemy import select, text

from domain.interactions import Channel, InteractionKind
from infra.db import UnitOfWork
from points import holdings, ledger
from points.changes import Account, Changes
from points.program import Program
from points.rules.stages import (
    Stage,
    bonus_changes,
    bonus_points_of,
    current_stage,
    period_start,
    previous_period_start,
)
from points.tables import EntryKind, MemberMiles
from timeline.rules import EventDraft


class MilesPeriod(msgspec.Struct, kw_only=True):
    """A member's `member_miles` row for one period (all zeros until the member earns miles in it)."""

    member_id: uuid.UUID
    period_start: datetime
    miles: int = 0
    bonus_stages: list[str] = msgspec.field(default_factory=list)


def periods_sql(member_id: str, starts: str) -> str:
    """SQL: a JSON array of the member's miles rows of the periods starting at `starts` (an array)."""
    return f"""(
        SELECT coalesce(json_agg(member_miles), '[]') FROM member_miles
        WHERE member_id = {member_id} AND period_start = ANY({starts})
    )"""  # noqa: S608 - constant SQL; values are bound


def periods_of(member_id: uuid.UUID, rows: object, starts: Iterable[datetime]) -> dict[datetime, MilesPeriod]:
    """The periods starting at `starts`, from `periods_sql`'s rows; a period without a row reads as zeros."""
    found = {row.period_start: row for row in msgspec.convert(rows, list[MilesPeriod])}
    return {
        start: found.get(start) or MilesPeriod(member_id=member_id, period_start=start) for start in starts
    }


def sale_periods(program: Program, earned_at: datetime, now: datetime) -> list[datetime]:
    """The periods a change of miles at `earned_at` reads: its own, and this and the previous one (stage)."""
    return sorted(
        {
            period_start(earned_at, program.stages),
            period_start(now, program.stages),
            previous_period_start(now, program.stages),
        }
    )


def stage_from(periods: dict[datetime, MilesPeriod], program: Program, now: datetime) -> Stage:
    """The stage held now, from periods read with `sale_periods` (after any change made to them)."""
    return current_stage(
        periods[period_start(now, program.stages)].miles,
        periods[previous_period_start(now, program.stages)].miles,
        program.stages,
    )


async def move_miles(
    uow: UnitOfWork,
    changes: Changes,
    program: Program,
    account: Account,
    period: MilesPeriod,
    miles: int,
) -> list[Stage]:
    """Add (or, for a return, take away) miles in `period`, then pay or take back the stage bonuses so
    the member holds exactly those their miles reach. Returns the stages newly reached.

    Miles never go below zero. The caller holds the member's account lock and read `period` after it.
    """
    if miles == 0:
        return []
    now = changes.now
    period.miles = max(0, period.miles + miles)
    held = [Stage(stage) for stage in period.bonus_stages]
    bonuses = bonus_changes(period.miles, held, program.stages)
    for stage in bonuses.take_back:
        points = await _take_back_bonus(uow, changes, account, stage, period.period_start, program)
        changes.events.append(
            _event(account, InteractionKind.POINTS_ADJUSTED, now, stage, points, "stage_bonus_reversed")
        )
    for threshold in bonuses.grant:
        if threshold.bonus_points:
            ledger.add_earning(
                changes,
                account,
                threshold.bonus_points,
                kind=EntryKind.BONUS,
                reason=f"Welcome to {threshold.stage.value.title()}: {threshold.bonus_points} bonus points",
                earned_at=now,
                available_at=now,
                expires_at=program.expires_at(now),
                details={"stage": threshold.stage.value, "period_start": period.period_start.isoformat()},
            )
        changes.events.append(
            _event(account, InteractionKind.STAGE_REACHED, now, threshold.stage, threshold.bonus_points)
        )
    kept = [stage for stage in held if stage not in bonuses.take_back]
    period.bonus_stages = [stage.value for stage in [*kept, *(t.stage for t in bonuses.grant)]]
    changes.miles[(period.member_id, period.period_start)] = msgspec.to_builtins(period)
    return [threshold.stage for threshold in bonuses.grant]


# The bonus paid for a stage in a period: its points and its lot (the latest, should there be several).
_BONUS_PAID = text(
    """
    SELECT points, lot_id FROM point_entries
    WHERE member_id = :member_id AND kind = 'bonus'
      AND details ->> 'stage' = :stage AND details ->> 'period_start' = :period_start
    ORDER BY id DESC LIMIT 1
    """
)


async def _take_back_bonus(
    uow: UnitOfWork, changes: Changes, account: Account, stage: Stage, start: datetime, program: Program
) -> int:
    """Reverse the bonus paid for `stage` in the period starting at `start`; returns its points."""
    paid = (
        await uow.session.execute(
            _BONUS_PAID,
            {"member_id": account.member_id, "stage": stage.value, "period_start": start.isoformat()},
        )
    ).one_or_none()
    # A bonus paid before bonuses named their stage is taken back at the program's current amount.
    points, lot_id = paid if paid is not None else (bonus_points_of(stage, program.stages), None)
    if points:
        await holdings.read_lots_with_points(uow, changes, account.member_id)
        ledger.take_back(
            changes,
            account,
            points,
            own_lots=[lot_id] if lot_id is not None else [],
            reason=f"{stage.value.title()} bonus taken back: a return took this period's miles below it",
            occurred_at=changes.now,
        )
    return int(points)


def _event(
    account: Account,
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
