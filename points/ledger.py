"""Ledger operations on one member's points, inside the caller's unit of work.

Every operation first locks the member's `point_accounts` row, so operations on one member run one
after another: a redemption sees the lots as the previous one left them and can never overdraw.
Lots are the source of truth for what is spendable; entries record every change with its reason.

**The history adds up to the points held.** Each entry's `points` is the change in `available +
pending`, so summing a member's history gives that balance (once expiry has run for lots past their
date). What is owed is not held: an `owed` entry has `points: 0` and `owed_change: +n`, and a `repay`
entry takes `n` of an earning (`points: -n`, `owed_change: -n`); `owed_change` sums to `owed`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, ColumnExpressionArgument, Select, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from infra.db import UnitOfWork
from points.errors import InsufficientPoints
from points.rules.ledger import LotTake, OpenLot, repayment, returned_lot_expiry, reverse, take_first_expiring
from points.schemas import BalancesView
from points.tables import EntryKind, PointAccount, PointEntry, PointLot


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
) -> tuple[int, uuid.UUID | None]:
    """Add earned points; what the member owes is repaid from them first.

    Returns the points repaid and the lot holding the rest (None when all of it repaid a debt).
    """
    account.lifetime_earned += points
    return await _credit(
        uow,
        account,
        points,
        kind=kind,
        reason=reason,
        occurred_at=earned_at,
        available_at=available_at,
        expires_at=expires_at,
        now=now,
        miles=miles,
        purchase_id=purchase_id,
        details=details or {},
    )


async def _credit(
    uow: UnitOfWork,
    account: PointAccount,
    points: int,
    *,
    kind: EntryKind,
    reason: str,
    occurred_at: datetime,
    available_at: datetime,
    expires_at: datetime,
    now: datetime,
    purchase_id: uuid.UUID | None,
    refund_id: uuid.UUID | None = None,
    **entry: Any,
) -> tuple[int, uuid.UUID | None]:
    """Points coming to the member (earned, or given back by a return): they repay what is owed first,
    and the rest forms a lot. Returns the points repaid and the lot (None when all repaid a debt)."""
    repaid = repayment(account.owed, points)
    lot = None
    if points - repaid > 0:
        lot = PointLot(
            member_id=account.member_id,
            purchase_id=purchase_id,
            source=kind,
            earned_at=occurred_at,
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
            occurred_at,
            now,
            lot_id=lot.id if lot else None,
            purchase_id=purchase_id,
            refund_id=refund_id,
            **entry,
        )
    )
    if repaid:
        account.owed -= repaid
        uow.session.add(
            _entry(
                account,
                EntryKind.REPAY,
                -repaid,
                f"{repaid} of these points repaid what an earlier return left owed",
                occurred_at,
                now,
                owed_change=-repaid,
                purchase_id=purchase_id,
                refund_id=refund_id,
            )
        )
    return repaid, lot.id if lot else None


def _first_expiring_covering(conditions: Sequence[ColumnElement[bool]], points: int) -> Select[PointLot]:
    """The lots (first-expiring first) that a take of `points` reaches into, locked; no others.

    The running total over the member's open lots finds the first lots whose sum covers `points`
    (all of them when they do not), so a redemption locks the lots it uses, not every open lot.
    """
    running = func.sum(PointLot.remaining).over(order_by=(PointLot.expires_at, PointLot.id))
    ranked = select(PointLot.id, (running - PointLot.remaining).label("before")).where(*conditions).subquery()
    reached = select(ranked.c.id).where(ranked.c.before < points)
    return (
        select(PointLot)
        .where(PointLot.id.in_(reached))
        .order_by(PointLot.expires_at, PointLot.id)
        .with_for_update()
    )


def _open(lots: Sequence[PointLot]) -> list[OpenLot]:
    return [OpenLot(lot.id, lot.remaining, lot.expires_at) for lot in lots]


def _apply(lots: Sequence[PointLot], takes: Sequence[LotTake]) -> None:
    taken = {take.lot_id: take.points for take in takes}
    for lot in lots:
        lot.remaining -= taken.get(lot.id, 0)


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
    spendable = (
        PointLot.member_id == account.member_id,
        PointLot.remaining > 0,
        PointLot.available_at <= now,
        PointLot.expires_at > now,
    )
    lots = list((await uow.session.execute(_first_expiring_covering(spendable, points))).scalars())
    takes = take_first_expiring(_open(lots), points)
    if sum(take.points for take in takes) < points:
        raise InsufficientPoints(requested=points, available=sum(take.points for take in takes))
    _apply(lots, takes)
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


async def take_back(
    uow: UnitOfWork,
    account: PointAccount,
    points: int,
    *,
    own_lots: Sequence[uuid.UUID],
    reason: str,
    occurred_at: datetime,
    now: datetime,
    purchase_id: uuid.UUID | None = None,
    refund_id: uuid.UUID | None = None,
    miles: int = 0,
) -> int:
    """Reverse earned points: from the lots they created (`own_lots`), then other open lots first-expiring
    first; what was already spent becomes owed (see the module docstring). Returns the points owed."""
    own = list(
        (
            await uow.session.execute(
                select(PointLot)
                .where(PointLot.id.in_(own_lots), PointLot.remaining > 0)
                .order_by(PointLot.expires_at, PointLot.id)
                .with_for_update()
            )
        ).scalars()
    )
    still_needed = max(0, points - sum(lot.remaining for lot in own))
    others: list[PointLot] = []
    if still_needed:
        open_elsewhere = (
            PointLot.member_id == account.member_id,
            PointLot.remaining > 0,
            PointLot.expires_at > now,
            PointLot.id.not_in(own_lots),
        )
        others = list(
            (await uow.session.execute(_first_expiring_covering(open_elsewhere, still_needed))).scalars()
        )
    reversal = reverse(_open(own), _open(others), points)
    _apply([*own, *others], reversal.takes)
    uow.session.add(
        _entry(
            account,
            EntryKind.REVERSE,
            -(points - reversal.owed),
            reason,
            occurred_at,
            now,
            miles=-miles,
            purchase_id=purchase_id,
            refund_id=refund_id,
            details={"lots": msgspec.to_builtins(reversal.takes)},
        )
    )
    if reversal.owed:
        account.owed += reversal.owed
        uow.session.add(
            _entry(
                account,
                EntryKind.OWED,
                0,
                f"{reversal.owed} of the points taken back were already spent; "
                "your next points repay them first",
                occurred_at,
                now,
                owed_change=reversal.owed,
                purchase_id=purchase_id,
                refund_id=refund_id,
            )
        )
    account.lifetime_earned -= points
    return reversal.owed


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
) -> int:
    """Return redeemed points: like earnings they repay what is owed first (so the order in which a
    member's returns are posted never leaves them holding points while owing); the rest forms a new lot
    (see `returned_lot_expiry` for how long it lasts). Returns the points repaid."""
    account.lifetime_redeemed -= points
    repaid, _ = await _credit(
        uow,
        account,
        points,
        kind=EntryKind.RETURN,
        reason=reason,
        occurred_at=occurred_at,
        available_at=now,
        expires_at=returned_lot_expiry(original, now),
        now=now,
        purchase_id=purchase_id,
        refund_id=refund_id,
    )
    return repaid


class HeldPoints(msgspec.Struct, frozen=True):
    """A member's points now, and the next ones to expire (within `horizon` of now)."""

    available: int
    pending: int
    expiring: int
    expiring_at: datetime | None


async def held_points(
    uow: UnitOfWork, member_ids: list[uuid.UUID], now: datetime, horizon: timedelta
) -> dict[uuid.UUID, HeldPoints]:
    """Points of many members at once (one query): for messages that quote a member's balance."""
    open_lots = (PointLot.member_id.in_(member_ids), PointLot.remaining > 0, PointLot.expires_at > now)
    soon = PointLot.expires_at <= now + horizon
    rows = await uow.session.execute(
        select(
            PointLot.member_id,
            func.coalesce(func.sum(PointLot.remaining).filter(PointLot.available_at <= now), 0),
            func.coalesce(func.sum(PointLot.remaining).filter(PointLot.available_at > now), 0),
            func.coalesce(func.sum(PointLot.remaining).filter(soon), 0),
            func.min(PointLot.expires_at).filter(soon),
        )
        .where(*open_lots)
        .group_by(PointLot.member_id)
    )
    held = {
        member_id: HeldPoints(int(available), int(pending), int(expiring), expiring_at)
        for member_id, available, pending, expiring, expiring_at in rows
    }
    return {member_id: held.get(member_id, HeldPoints(0, 0, 0, None)) for member_id in member_ids}


def expiring_at_least(
    member_id: ColumnExpressionArgument[uuid.UUID], points: int, now: datetime, within: timedelta
) -> ColumnElement[bool]:
    """SQL: at least `points` of the member's points expire within `within` of now (audience segments)."""
    expiring = (
        select(func.coalesce(func.sum(PointLot.remaining), 0))
        .where(
            PointLot.member_id == member_id,
            PointLot.remaining > 0,
            PointLot.expires_at > now,
            PointLot.expires_at <= now + within,
        )
        .scalar_subquery()
    )
    return expiring >= points
