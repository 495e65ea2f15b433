"""Ledger operations on one member's points, inside the caller's unit of work.

Every operation first locks the member's `point_accounts` row, so operations on one member run one
after another: a redemption sees the lots as the previous one left them and can never overdraw.
Lots are the source of truth for what is spendable; entries record every change with its reason.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from infra.db import UnitOfWork
from points.errors import InsufficientPoints
from points.schemas import BalancesView
from points.tables import EntryKind, PointAccount, PointEntry, PointLot

RETURNED_POINTS_MIN_VALIDITY = timedelta(days=30)


class Balances(msgspec.Struct, frozen=True):
    available: int
    pending: int
    owed: int
    lifetime_earned: int
    next_expiry_points: int
    next_expiry_at: datetime | None

    def view(self) -> BalancesView:
        return BalancesView(
            available=self.available,
            pending=self.pending,
            owed=self.owed,
            lifetime_earned=self.lifetime_earned,
        )


class LotTake(msgspec.Struct, frozen=True):
    lot_id: uuid.UUID
    points: int
    expires_at: datetime


async def lock_account(uow: UnitOfWork, member_id: uuid.UUID, now: datetime) -> PointAccount:
    await uow.session.execute(
        pg_insert(PointAccount)
        .values(
            member_id=member_id,
            lifetime_earned=0,
            lifetime_redeemed=0,
            lifetime_expired=0,
            owed=0,
            updated_at=now,
        )
        .on_conflict_do_nothing()
    )
    account = (
        await uow.session.execute(
            select(PointAccount).where(PointAccount.member_id == member_id).with_for_update()
        )
    ).scalar_one()
    account.updated_at = now
    return account


async def balances(uow: UnitOfWork, member_id: uuid.UUID, now: datetime) -> Balances:
    open_lots = (PointLot.member_id == member_id, PointLot.remaining > 0, PointLot.expires_at > now)
    available, pending, next_expiry_at = (
        await uow.session.execute(
            select(
                func.coalesce(func.sum(PointLot.remaining).filter(PointLot.available_at <= now), 0),
                func.coalesce(func.sum(PointLot.remaining).filter(PointLot.available_at > now), 0),
                func.min(PointLot.expires_at),
            ).where(*open_lots)
        )
    ).one()
    next_points = 0
    if next_expiry_at is not None:
        next_points = (
            await uow.session.execute(
                select(func.sum(PointLot.remaining)).where(*open_lots, PointLot.expires_at == next_expiry_at)
            )
        ).scalar_one()
    account = await uow.session.get(PointAccount, member_id)
    return Balances(
        available=int(available),
        pending=int(pending),
        owed=account.owed if account else 0,
        lifetime_earned=account.lifetime_earned if account else 0,
        next_expiry_points=int(next_points),
        next_expiry_at=next_expiry_at,
    )


def _entry(
    account: PointAccount,
    kind: EntryKind,
    points: int,
    reason: str,
    occurred_at: datetime,
    now: datetime,
    **fields: Any,
) -> PointEntry:
    return PointEntry(
        member_id=account.member_id,
        kind=kind,
        points=points,
        reason=reason,
        occurred_at=occurred_at,
        recorded_at=now,
        **fields,
    )


async def earn(
    uow: UnitOfWork,
    account: PointAccount,
    points: int,
    *,
    kind: EntryKind,
    reason: str,
    earned_at: datetime,
    available_at: datetime,
    expires_at: datetime,
    now: datetime,
    miles: int = 0,
    purchase_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Add earned points; what the member owes is repaid from them first. Returns the points repaid."""
    repaid = min(account.owed, points)
    lot = None
    if points - repaid > 0:
        lot = PointLot(
            member_id=account.member_id,
            purchase_id=purchase_id,
            source=kind,
            earned_at=earned_at,
            available_at=available_at,
            expires_at=expires_at,
            amount=points - repaid,
            remaining=points - repaid,
        )
        uow.session.add(lot)
        await uow.session.flush()
    uow.session.add(
        _entry(
            account,
            kind,
            points,
            reason,
            earned_at,
            now,
            miles=miles,
            lot_id=lot.id if lot else None,
            purchase_id=purchase_id,
            details=details or {},
        )
    )
    if repaid:
        account.owed -= repaid
        uow.session.add(
            _entry(
                account,
                EntryKind.REPAY,
                -repaid,
                f"{repaid} points repaid what an earlier refund left owed",
                earned_at,
                now,
                purchase_id=purchase_id,
            )
        )
    account.lifetime_earned += points
    return repaid


async def redeem(
    uow: UnitOfWork,
    account: PointAccount,
    points: int,
    *,
    reason: str,
    occurred_at: datetime,
    now: datetime,
    purchase_id: uuid.UUID,
) -> list[LotTake]:
    """Spend available points, first-expiring lots first; InsufficientPoints when they do not cover it."""
    lots = (
        await uow.session.execute(
            select(PointLot)
            .where(
                PointLot.member_id == account.member_id,
                PointLot.remaining > 0,
                PointLot.available_at <= now,
                PointLot.expires_at > now,
            )
            .order_by(PointLot.expires_at, PointLot.id)
            .with_for_update()
        )
    ).scalars()
    takes = _take_from(list(lots), points)
    if sum(take.points for take in takes) < points:
        raise InsufficientPoints(requested=points, available=sum(take.points for take in takes))
    account.lifetime_redeemed += points
    uow.session.add(
        _entry(
            account,
            EntryKind.REDEEM,
            -points,
            reason,
            occurred_at,
            now,
            purchase_id=purchase_id,
            details={"lots": msgspec.to_builtins(takes)},
        )
    )
    return takes


def _take_from(lots: list[PointLot], points: int) -> list[LotTake]:
    takes = []
    left = points
    for lot in lots:
        if left == 0:
            break
        taken = min(lot.remaining, left)
        if taken:
            lot.remaining -= taken
            left -= taken
            takes.append(LotTake(lot.id, taken, lot.expires_at))
    return takes


async def take_back(
    uow: UnitOfWork,
    account: PointAccount,
    points: int,
    *,
    reason: str,
    occurred_at: datetime,
    now: datetime,
    purchase_id: uuid.UUID,
    refund_id: uuid.UUID,
    miles: int = 0,
) -> int:
    """Reverse earned points: from the purchase's own lot, then other open lots (first-expiring first);
    what was already spent becomes owed, a visible negative adjustment. Returns the points owed."""
    own = (
        await uow.session.execute(
            select(PointLot)
            .where(
                PointLot.purchase_id == purchase_id, PointLot.source == EntryKind.EARN, PointLot.remaining > 0
            )
            .with_for_update()
        )
    ).scalars()
    others = (
        await uow.session.execute(
            select(PointLot)
            .where(
                PointLot.member_id == account.member_id,
                PointLot.remaining > 0,
                PointLot.expires_at > now,
                PointLot.purchase_id.is_distinct_from(purchase_id),
            )
            .order_by(PointLot.expires_at, PointLot.id)
            .with_for_update()
        )
    ).scalars()
    takes = _take_from([*own, *others], points)
    owed = points - sum(take.points for take in takes)
    uow.session.add(
        _entry(
            account,
            EntryKind.REVERSE,
            -(points - owed),
            reason,
            occurred_at,
            now,
            miles=-miles,
            purchase_id=purchase_id,
            refund_id=refund_id,
            details={"lots": msgspec.to_builtins(takes)},
        )
    )
    if owed:
        account.owed += owed
        uow.session.add(
            _entry(
                account,
                EntryKind.OWED,
                -owed,
                f"{owed} points of the returned purchase were already spent; future points repay them first",
                occurred_at,
                now,
                purchase_id=purchase_id,
                refund_id=refund_id,
            )
        )
    account.lifetime_earned -= points
    return owed


async def give_back(
    uow: UnitOfWork,
    account: PointAccount,
    points: int,
    *,
    original: list[LotTake],
    reason: str,
    occurred_at: datetime,
    now: datetime,
    purchase_id: uuid.UUID,
    refund_id: uuid.UUID,
) -> None:
    """Return redeemed points as a new lot valid as long as the latest lot they came from (>= 30 days)."""
    expires_at = max([take.expires_at for take in original] + [now + RETURNED_POINTS_MIN_VALIDITY])
    lot = PointLot(
        member_id=account.member_id,
        purchase_id=purchase_id,
        source=EntryKind.RETURN,
        earned_at=occurred_at,
        available_at=now,
        expires_at=expires_at,
        amount=points,
        remaining=points,
    )
    uow.session.add(lot)
    await uow.session.flush()
    account.lifetime_redeemed -= points
    uow.session.add(
        _entry(
            account,
            EntryKind.RETURN,
            points,
            reason,
            occurred_at,
            now,
            lot_id=lot.id,
            purchase_id=purchase_id,
            refund_id=refund_id,
        )
    )
