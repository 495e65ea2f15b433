"""What must hold of a member's ledger whatever happened to it, read straight from the tables.

Each check returns the broken invariants as readable lines (empty when all hold), so a test that races
purchases, returns, expiry and check-ins against each other can say exactly what the race broke.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text

from infra.db import Database

_LOTS = text(
    """
    SELECT coalesce(sum(remaining) FILTER (WHERE expires_at > :now AND available_at <= :now), 0) AS available,
           coalesce(sum(remaining) FILTER (WHERE expires_at > :now AND available_at > :now), 0) AS pending,
           coalesce(sum(remaining), 0) AS remaining,
           count(*) FILTER (WHERE remaining > 0 AND expires_at <= :now) AS due_for_expiry,
           count(*) FILTER (WHERE remaining < 0 OR remaining > amount) AS out_of_bounds
    FROM point_lots WHERE member_id = :member_id
    """
)
_ENTRIES = text(
    """
    SELECT kind::text AS kind, coalesce(sum(points), 0) AS points,
           coalesce(sum(owed_change), 0) AS owed_change
    FROM point_entries WHERE member_id = :member_id GROUP BY kind
    """
)
_ACCOUNT = text("SELECT * FROM point_accounts WHERE member_id = :member_id")
_SALES_WITHOUT_THEIR_REFUNDS = text(
    """
    SELECT p.receipt_id, p.refunded_minor, p.points_reversed, p.points_returned, p.miles_reversed,
           coalesce(sum(r.amount_minor), 0) AS refunded, coalesce(sum(r.points_reversed), 0) AS reversed,
           coalesce(sum(r.points_returned), 0) AS returned, coalesce(sum(r.miles_reversed), 0) AS miles
    FROM purchases p LEFT JOIN refunds r ON r.purchase_id = p.id
    WHERE p.member_id = :member_id
    GROUP BY p.id
    HAVING p.refunded_minor <> coalesce(sum(r.amount_minor), 0)
        OR p.points_reversed <> coalesce(sum(r.points_reversed), 0)
        OR p.points_returned <> coalesce(sum(r.points_returned), 0)
        OR p.miles_reversed <> coalesce(sum(r.miles_reversed), 0)
    """
)
_FACTS_WITHOUT_ONE_EVENT = text(
    """
    SELECT 'purchase ' || p.receipt_id AS fact, count(e.id) AS events
    FROM purchases p
    LEFT JOIN timeline_events e ON e.subject_ref = p.id::text AND e.kind = 'purchased'
    WHERE p.member_id = :member_id GROUP BY p.id HAVING count(e.id) <> 1
    UNION ALL
    SELECT 'refund ' || r.refund_receipt_id, count(e.id)
    FROM refunds r JOIN purchases p ON p.id = r.purchase_id
    LEFT JOIN timeline_events e
        ON e.subject_ref = p.id::text AND e.kind = 'refunded'
       AND (e.properties ->> 'amount_minor')::bigint = r.amount_minor
    WHERE p.member_id = :member_id GROUP BY r.id HAVING count(e.id) < 1
    """
)
_MILES = text(
    """
    SELECT
        (SELECT coalesce(sum(miles), 0) FROM member_miles WHERE member_id = :member_id) AS held,
        (SELECT coalesce(sum(miles_earned - miles_reversed), 0) FROM purchases WHERE member_id = :member_id)
        + (SELECT coalesce(sum(miles), 0) FROM check_ins WHERE member_id = :member_id) AS earned,
        (SELECT coalesce(json_agg(json_build_object('miles', miles, 'stages', bonus_stages)), '[]')
         FROM member_miles WHERE member_id = :member_id) AS periods
    """
)
_RECEIPTS_TWICE = text(
    """
    SELECT receipt_id FROM purchases WHERE member_id = :member_id
    GROUP BY store_id, receipt_id HAVING count(*) > 1
    """
)


async def broken_invariants(
    db: Database,
    member_id: uuid.UUID | str,
    now: datetime,
    *,
    shown: tuple[int, int] | None = None,
    silver_at: int | None = None,
) -> list[str]:
    """Every invariant of the member's points, lots, entries, miles, sales and their timeline events that
    does not hold now. `shown`: the (available, pending) points the app shows, which the lots must hold;
    `silver_at`: the miles of the stage whose bonus a period must hold exactly when its miles reach them
    (None: not checked). Run expiry first: lots past their date must be expired."""
    params = {"member_id": uuid.UUID(str(member_id)), "now": now}
    broken: list[str] = []
    async with db.unit_of_work() as uow:
        run = uow.session.execute
        lots = (await run(_LOTS, params)).one()
        entries = {row.kind: row for row in (await run(_ENTRIES, params))}
        account = (await run(_ACCOUNT, params)).one_or_none()
        refunds = (await run(_SALES_WITHOUT_THEIR_REFUNDS, params)).all()
        events = (await run(_FACTS_WITHOUT_ONE_EVENT, params)).all()
        miles = (await run(_MILES, params)).one()
        twice = (await run(_RECEIPTS_TWICE, params)).scalars().all()

    def total(kind: str, column: str = "points") -> int:
        row = entries.get(kind)
        return int(getattr(row, column)) if row is not None else 0

    held = sum(int(row.points) for row in entries.values())
    owed = sum(int(row.owed_change) for row in entries.values())
    if shown is not None and shown != (int(lots.available), int(lots.pending)):
        broken.append(f"the app shows {shown} (available, pending); lots hold {lots.available, lots.pending}")
    if lots.out_of_bounds:
        broken.append(f"{lots.out_of_bounds} lots with remaining outside [0, amount]")
    if lots.due_for_expiry:
        broken.append(f"{lots.due_for_expiry} lots past their date still hold points (expiry not run?)")
    if held != int(lots.remaining):
        broken.append(f"entries sum to {held} points but lots hold {lots.remaining}")
    account_totals: dict[str, Any] = dict(account._mapping) if account is not None else {}
    expected = {
        "owed": owed,
        "lifetime_earned": total("earn") + total("bonus") + total("reverse") - total("owed", "owed_change"),
        "lifetime_redeemed": -total("redeem") - total("return"),
        "lifetime_expired": -total("expire"),
    }
    for name, value in expected.items():
        if int(account_totals.get(name, 0)) != value:
            broken.append(f"account {name} is {account_totals.get(name, 0)}, its entries say {value}")
    for row in refunds:
        broken.append(f"sale {row.receipt_id}: its totals disagree with its refunds {tuple(row)}")
    for row in events:
        broken.append(f"{row.fact} has {row.events} timeline events")
    if int(miles.held) != int(miles.earned):
        broken.append(f"member holds {miles.held} miles; sales, returns and check-ins say {miles.earned}")
    if silver_at is not None:
        for period in miles.periods:
            if (period["miles"] >= silver_at) != ("silver" in period["stages"]):
                broken.append(f"a period with {period['miles']} miles holds bonuses {period['stages']}")
    broken.extend(f"receipt {receipt} recorded twice" for receipt in twice)
    return broken
