"""Ledger operations on one member's points, inside the caller's unit of work.

Every operation runs with the member's `point_accounts` row locked (`lock_account`), so operations on
one member run one after another: a redemption sees the lots as the previous one left them and can
never overdraw. Lots are the source of truth for what is spendable; entries record every change with
its reason. The operations decide in Python over the lots the caller read (under the same lock) and
record their decisions in a `Changes`, written with the rest of the use case in one statement.

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
from sqlalchemy import ColumnElement, ColumnExpressionArgument, func, select, text

from domain.ids import new_id
from infra.db import UnitOfWork
from points import holdings
from points.changes import Account, Changes, Lot
from points.errors import InsufficientPoints
from points.rules.ledger import LotTake, OpenLot, repayment, returned_lot_expiry, reverse, take_first_expiring
from points.tables import EntryKind, PointLot

TOTALS = ("lifetime_earned", "lifetime_redeemed", "lifetime_expired", "owed")


def lock_account_sql(source: str, member_id: str) -> str:
    """SQL: create (if missing) and lock the accounts of the members `member_id` names in `source`,
    returning their totals. For statements that find the member and lock its account at once."""
    return f"""
    INSERT INTO point_accounts AS account
        (member_id, lifetime_earned, lifetime_redeemed, lifetime_expired, owed, updated_at)
    SELECT {member_id}, 0, 0, 0, 0, CAST(:now AS timestamptz) FROM {source}
    ON CONFLICT (member_id) DO UPDATE SET updated_at = excluded.updated_at
    RETURNING account.member_id, {", ".join(f"account.{total}" for total in TOTALS)}"""  # noqa: S608 - constant SQL; values are bound


_LOCK_ACCOUNT = text(lock_account_sql("(SELECT CAST(:member_id AS uuid) AS member_id) AS given", "member_id"))


def account_of(row: Any) -> Account:
    return Account(
        member_id=row.member_id,
        lifetime_earned=row.lifetime_earned,
        lifetime_redeemed=row.lifetime_redeemed,
        lifetime_expired=row.lifetime_expired,
        owed=row.owed,
    )


async def lock_account(uow: UnitOfWork, member_id: uuid.UUID, now: datetime) -> Account:
    """The member's account, created if missing and locked until the transaction ends (one statement)."""
    row = (await uow.session.execute(_LOCK_ACCOUNT, {"member_id": member_id, "now": now})).one()
    return account_of(row)


_BALANCES = text(holdings.balances_sql())


async def balances(uow: UnitOfWork, member_id: uuid.UUID, now: datetime) -> holdings.Balances:
    """The member's balances, next expiry and totals now (one statement)."""
    row = (await uow.session.execute(_BALANCES, {"member_id": member_id, "now": now})).one()
    return holdings.balances_of(row)


def _entry(
    changes: Changes,
    account: Account,
    kind: EntryKind,
    points: int,
    reason: str,
    occurred_at: datetime,
    **fields: Any,
) -> None:
    changes.entries.append(
        {
            "id": new_id(),
            "member_id": account.member_id,
            "kind": kind,
            "points": points,
            "owed_change": 0,
            "miles": 0,
            "lot_id": None,
            "purchase_id": None,
            "refund_id": None,
            "reason": reason,
            "occurred_at": occurred_at,
            "recorded_at": changes.now,
            "details": {},
            **fields,
        }
    )


def add_earning(
    changes: Changes,
    account: Account,
    points: int,
    *,
    kind: EntryKind,
    reason: str,
    earned_at: datetime,
    available_at: datetime,
    expires_at: datetime,
    miles: int = 0,
    purchase_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> tuple[int, uuid.UUID | None]:
    """Add earned points; what the member owes is repaid from them first.

    Returns the points repaid and the lot holding the rest (None when all of it repaid a debt).
    """
    changes.touch(account).lifetime_earned += points
    return _credit(
        changes,
        account,
        points,
        kind=kind,
        reason=reason,
        occurred_at=earned_at,
        available_at=available_at,
        expires_at=expires_at,
        purchase_id=purchase_id,
        miles=miles,
        details=details or {},
    )


def _credit(
    changes: Changes,
    account: Account,
    points: int,
    *,
    kind: EntryKind,
    reason: str,
    occurred_at: datetime,
    available_at: datetime,
    expires_at: datetime,
    purchase_id: uuid.UUID | None,
    refund_id: uuid.UUID | None = None,
    **entry: Any,
) -> tuple[int, uuid.UUID | None]:
    """Points coming to the member (earned, or given back by a return): they repay what is owed first,
    and the rest forms a lot. Returns the points repaid and the lot (None when all repaid a debt)."""
    repaid = repayment(account.owed, points)
    lot = None
    if points - repaid > 0:
        lot = Lot(
            id=new_id(),
            member_id=account.member_id,
            purchase_id=purchase_id,
            source=kind,
            earned_at=occurred_at,
            available_at=available_at,
            expires_at=expires_at,
            amount=points - repaid,
            remaining=points - repaid,
        )
        changes.new_lots.append(lot)
    lot_id = lot.id if lot else None
    ids = {"purchase_id": purchase_id, "refund_id": refund_id}
    _entry(changes, account, kind, points, reason, occurred_at, lot_id=lot_id, **ids, **entry)
    if repaid:
        changes.touch(account).owed -= repaid
        reason = f"{repaid} of these points repaid what an earlier return left owed"
        _entry(changes, account, EntryKind.REPAY, -repaid, reason, occurred_at, owed_change=-repaid, **ids)
    return repaid, lot_id


def _open(lots: Sequence[Lot]) -> list[OpenLot]:
    return [OpenLot(lot.id, lot.remaining, lot.expires_at) for lot in lots]


def _first_expiring(lots: Sequence[Lot]) -> list[Lot]:
    return sorted(lots, key=lambda lot: (lot.expires_at, lot.id))


def _apply(changes: Changes, takes: Sequence[LotTake]) -> None:
    taken = {take.lot_id: take.points for take in takes}
    for lot in changes.lots():
        lot.remaining -= taken.get(lot.id, 0)


def redeem(
    changes: Changes,
    account: Account,
    points: int,
    *,
    reason: str,
    occurred_at: datetime,
    purchase_id: uuid.UUID,
) -> list[LotTake]:
    """Spend available points, first-expiring lots first; InsufficientPoints when they do not cover it.

    Takes from the spendable lots known to `changes`: the caller read (and locked) at least those a
    take of `points` reaches (see `points.sales`).
    """
    now = changes.now
    spendable = _first_expiring(
        [lot for lot in changes.lots() if lot.member_id == account.member_id and lot.is_spendable(now)]
    )
    takes = take_first_expiring(_open(spendable), points)
    if sum(take.points for take in takes) < points:
        raise InsufficientPoints(requested=points, available=sum(take.points for take in takes))
    _apply(changes, takes)
    changes.touch(account).lifetime_redeemed += points
    details = {"lots": msgspec.to_builtins(takes)}
    _entry(
        changes,
        account,
        EntryKind.REDEEM,
        -points,
        reason,
        occurred_at,
        purchase_id=purchase_id,
        details=details,
    )
    return takes


def take_back(
    changes: Changes,
    account: Account,
    points: int,
    *,
    own_lots: Sequence[uuid.UUID],
    reason: str,
    occurred_at: datetime,
    purchase_id: uuid.UUID | None = None,
    refund_id: uuid.UUID | None = None,
    miles: int = 0,
) -> int:
    """Reverse earned points: from the lots they created (`own_lots`), then other open lots first-expiring
    first; what was already spent becomes owed (see the module docstring). Returns the points owed.

    Sees the lots known to `changes`: the caller read (and locked) every lot of the member with points.
    """
    now = changes.now
    mine = [lot for lot in changes.lots() if lot.member_id == account.member_id and lot.remaining > 0]
    own = _first_expiring([lot for lot in mine if lot.id in own_lots])
    others = _first_expiring([lot for lot in mine if lot.id not in own_lots and lot.is_open(now)])
    reversal = reverse(_open(own), _open(others), points)
    _apply(changes, reversal.takes)
    ids = {"purchase_id": purchase_id, "refund_id": refund_id}
    _entry(
        changes,
        account,
        EntryKind.REVERSE,
        -(points - reversal.owed),
        reason,
        occurred_at,
        miles=-miles,
        details={"lots": msgspec.to_builtins(reversal.takes)},
        **ids,
    )
    if reversal.owed:
        changes.touch(account).owed += reversal.owed
        owed_reason = (
            f"{reversal.owed} of the points taken back were already spent; your next points repay them first"
        )
        _entry(
            changes, account, EntryKind.OWED, 0, owed_reason, occurred_at, owed_change=reversal.owed, **ids
        )
    changes.touch(account).lifetime_earned -= points
    return reversal.owed


def give_back(
    changes: Changes,
    account: Account,
    points: int,
    *,
    original: list[LotTake],
    reason: str,
    occurred_at: datetime,
    purchase_id: uuid.UUID,
    refund_id: uuid.UUID,
) -> int:
    """Return redeemed points: like earnings they repay what is owed first (so the order in which a
    member's returns are posted never leaves them holding points while owing); the rest forms a new lot
    (see `returned_lot_expiry` for how long it lasts). Returns the points repaid."""
    changes.touch(account).lifetime_redeemed -= points
    repaid, _ = _credit(
        changes,
        account,
        points,
        kind=EntryKind.RETURN,
        reason=reason,
        occurred_at=occurred_at,
        available_at=changes.now,
        expires_at=returned_lot_expiry(original, changes.now),
        purchase_id=purchase_id,
        refund_id=refund_id,
    )
    return repaid


def expire(changes: Changes, account: Account, lots: Sequence[Lot]) -> int:
    """Expire what is left of `lots` (read and locked by the caller); returns the points expired."""
    expired = 0
    for lot in changes.read(list(lots)):
        reason = f"{lot.remaining} points earned {lot.earned_at:%Y-%m-%d} expired"
        _entry(changes, account, EntryKind.EXPIRE, -lot.remaining, reason, lot.expires_at, lot_id=lot.id)
        expired += lot.remaining
        lot.remaining = 0
    changes.touch(account).lifetime_expired += expired
    return expired


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
