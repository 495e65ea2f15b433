"""What a member sees of their points: balances and stage, history, and the code to show at the register."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select

from accounts.devices import active_device_secret
from accounts.errors import DeviceNotFound, MemberNotFound
from accounts.tables import Member
from infra.db import UnitOfWork
from infra.pages import fetch_page
from points import ledger
from points.code_images import code128_svg, qr_svg
from points.member_codes import STEP_S, code_expires_at, member_code
from points.miles import miles_of
from points.program import Program
from points.rules.stages import current_stage, next_period_start, next_stage, period_start
from points.schemas import HistoryEntry, HistoryPage, MemberCodeView, NextStage, PointsSummary
from points.tables import PointEntry


async def points_summary(
    uow: UnitOfWork, program: Program, member_id: uuid.UUID, now: datetime
) -> PointsSummary:
    balances = await ledger.balances(uow, member_id, now)
    this_period, previous_period = await miles_of(uow, program, member_id, now)
    upcoming = next_stage(this_period, program.stages)
    return PointsSummary(
        balances=balances.view(),
        next_expiry_points=balances.next_expiry_points,
        next_expiry_at=balances.next_expiry_at,
        miles_this_period=this_period,
        period_started_at=period_start(now, program.stages),
        period_ends_at=next_period_start(now, program.stages),
        stage=current_stage(this_period, previous_period, program.stages),
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
