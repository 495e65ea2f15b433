"""What a member sees of their points: balances and stage, history, and the code to show at the register."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text

from accounts.devices import active_device_secret
from accounts.errors import DeviceNotFound, MemberNotFound
from accounts.tables import Member
from infra.db import UnitOfWork
from infra.pages import fetch_page
from points import holdings
from points.code_images import code128_svg, qr_svg
from points.member_codes import STEP_S, code_expires_at, member_code
from points.miles import MilesPeriod, periods_of, periods_sql, stage_from
from points.program import Program
from points.rules.stages import Stage, next_period_start, next_stage, period_start, previous_period_start
from points.schemas import HistoryEntry, HistoryPage, MemberCodeView, NextStage, PointsSummary
from points.tables import PointEntry


@dataclass(frozen=True)
class Standing:
    """A member's balances and the miles of this and the previous period (their stage), read together."""

    balances: holdings.Balances
    periods: dict[datetime, MilesPeriod]

    def miles_this_period(self, program: Program, now: datetime) -> int:
        return self.periods[period_start(now, program.stages)].miles

    def stage(self, program: Program, now: datetime) -> Stage:
        return stage_from(self.periods, program, now)


_STANDING = text(
    holdings.balances_sql(f", {periods_sql(':member_id', 'CAST(:starts AS timestamptz[])')} AS periods")
)


async def standing(uow: UnitOfWork, program: Program, member_id: uuid.UUID, now: datetime) -> Standing:
    """The member's balances, next expiry, totals and stage now, in one statement."""
    starts = [period_start(now, program.stages), previous_period_start(now, program.stages)]
    row = (await uow.session.execute(_STANDING, {"member_id": member_id, "now": now, "starts": starts})).one()
    return Standing(holdings.balances_of(row), periods_of(member_id, row.periods, starts))


async def points_summary(
    uow: UnitOfWork, program: Program, member_id: uuid.UUID, now: datetime
) -> PointsSummary:
    found = await standing(uow, program, member_id, now)
    balances = found.balances
    this_period = found.miles_this_period(program, now)
    upcoming = next_stage(this_period, program.stages)
    return PointsSummary(
        balances=balances.view(),
        next_expiry_points=balances.next_expiry_points,
        next_expiry_at=balances.next_expiry_at,
        miles_this_period=this_period,
        period_started_at=period_start(now, program.stages),
        period_ends_at=next_period_start(now, program.stages),
        stage=found.stage(program, now),
        next_stage=NextStage(stage=upcoming[0], miles_missing=upcoming[1]) if upcoming else None,
    )


async def points_history(
    uow: UnitOfWork, member_id: uuid.UUID, cursor: str | None, limit: int
) -> HistoryPage:
    rows, next_cursor = await fetch_page(
        uow,
        select(PointEntry).where(PointEntry.member_id == member_id),
        PointEntry.id,
        cursor,
        limit,
        newest_first=True,
    )
    return HistoryPage(
        items=[
            HistoryEntry(
                id=e.id,
                kind=e.kind.value,
                points=e.points,
                owed_change=e.owed_change,
                miles=e.miles,
                reason=e.reason,
                occurred_at=e.occurred_at,
                purchase_id=e.purchase_id,
                refund_id=e.refund_id,
            )
            for e in rows
        ],
        next_cursor=next_cursor,
    )


async def current_member_code(
    uow: UnitOfWork, code_key: str, member_id: uuid.UUID, device_slot: int | None, now: datetime
) -> MemberCodeView:
    """The code this login's device would compute offline, ready to show, with its renderings."""
    member = await uow.session.get(Member, member_id)
    if member is None or member.erased_at is not None:
        raise MemberNotFound()
    secret = (
        None if device_slot is None else await active_device_secret(uow, member_id, device_slot, code_key)
    )
    if secret is None or device_slot is None:
        raise DeviceNotFound("this login's device was revoked; log in again")
    code = member_code(member.card_number, device_slot, secret, now)
    return MemberCodeView(
        code=code,
        expires_at=code_expires_at(now),
        step_s=STEP_S,
        card_number=member.card_number,
        slot=device_slot,
        qr_svg=qr_svg(code),
        code128_svg=code128_svg(code),
    )
