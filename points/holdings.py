"""What a member holds, read under the account lock: balances, and the lots the ledger takes from.

The SQL comes as fragments (a select-list item, a CTE) so that a use case reads everything it needs
in one statement after taking the account lock (points.ledger.lock_account): read after the lock, it
includes everything committed before the lock was granted, and nothing changes it until commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import text

from infra.db import UnitOfWork
from points.changes import Changes, Lot
from points.schemas import BalancesView


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


def balances_sql(also: str = "", first: str = "") -> str:
    """SQL: the member's balances, next expiry and account totals (parameters :member_id and :now; no
    account yet reads as zeros) as one row, with `also` (more select-list items) read alongside, after
    the CTEs `first` (for a statement that writes something first)."""
    return f"""
WITH {first} open_lots AS (
    SELECT remaining, available_at, expires_at FROM point_lots
    WHERE member_id = :member_id AND remaining > 0 AND expires_at > :now
), next_expiry AS (SELECT min(expires_at) AS at FROM open_lots)
SELECT
    coalesce((SELECT sum(remaining) FROM open_lots WHERE available_at <= :now), 0) AS available,
    coalesce((SELECT sum(remaining) FROM open_lots WHERE available_at > :now), 0) AS pending,
    (SELECT at FROM next_expiry) AS next_expiry_at,
    coalesce((SELECT sum(remaining) FROM open_lots WHERE expires_at = (SELECT at FROM next_expiry)), 0)
        AS next_expiry_points,
    coalesce((SELECT owed FROM point_accounts WHERE member_id = :member_id), 0) AS owed,
    coalesce((SELECT lifetime_earned FROM point_accounts WHERE member_id = :member_id), 0)
        AS lifetime_earned
    {also}"""  # noqa: S608 - constant SQL; values are bound


def balances_of(row: Any) -> Balances:
    return Balances(
        available=int(row.available),
        pending=int(row.pending),
        owed=int(row.owed),
        lifetime_earned=int(row.lifetime_earned),
        next_expiry_points=int(row.next_expiry_points),
        next_expiry_at=row.next_expiry_at,
    )


_LOT_COLUMNS = "id, member_id, purchase_id, source, earned_at, available_at, expires_at, amount, remaining"


def lots_sql(where: str) -> str:
    """SQL: a JSON array of the lots meeting `where` (a condition on `point_lots`), locked."""
    return f"""(
        SELECT coalesce(json_agg(lot), '[]') FROM (
            SELECT {_LOT_COLUMNS} FROM point_lots WHERE {where} FOR UPDATE
        ) AS lot
    )"""  # noqa: S608 - constant SQL; values are bound


def lots_with_points_sql(member_id: str) -> str:
    """SQL: a JSON array of the member's lots with points left (expired ones too), locked."""
    return lots_sql(f"member_id = {member_id} AND remaining > 0")


def covering_lots_sql(member_id: str, points: str, now: str) -> str:
    """SQL: a JSON array of the spendable lots (first-expiring first) that a take of `points` reaches
    into, locked; no others. The running total over the member's spendable lots finds the first lots
    whose sum covers `points` (all of them when they do not)."""
    return lots_sql(
        f"""id IN (
            SELECT id FROM (
                SELECT id, sum(remaining) OVER (ORDER BY expires_at, id) - remaining AS before
                FROM point_lots
                WHERE member_id = {member_id} AND remaining > 0
                  AND available_at <= {now} AND expires_at > {now}
            ) AS ranked
            WHERE before < {points}
        )"""  # noqa: S608 - constant SQL; values are bound
    )


def lots_of(rows: object) -> list[Lot]:
    """The lots of `lots_with_points_sql` or `covering_lots_sql`."""
    return msgspec.convert(rows, list[Lot])


_LOTS_WITH_POINTS = text(f"SELECT {lots_with_points_sql(':member_id')}")


async def read_lots_with_points(uow: UnitOfWork, changes: Changes, member_id: uuid.UUID) -> list[Lot]:
    """Read and lock the member's lots with points into `changes` (lots it knows already stay as they are)."""
    rows = (await uow.session.execute(_LOTS_WITH_POINTS, {"member_id": member_id})).scalar_one()
    return changes.read(lots_of(rows))
