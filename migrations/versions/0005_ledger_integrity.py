"""ledger integrity: 64-bit amounts, owed points out of the held balance, per-line sale figures,
one redemption per member code, indexes for refunds and for the check-in travel check

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Points, miles and money columns that were 32-bit: a sale over 2^31 yen (or miles) must not fail.
WIDENED = {
    "point_entries": ("points", "miles"),
    "point_lots": ("amount", "remaining"),
    "purchases": (
        "points_redeemed",
        "points_earned",
        "miles_earned",
        "points_reversed",
        "miles_reversed",
        "points_returned",
    ),
    "refunds": ("points_reversed", "miles_reversed", "points_returned", "points_owed"),
    "check_ins": ("points", "miles"),
}


def upgrade() -> None:
    for table, columns in WIDENED.items():
        for column in columns:
            op.alter_column(table, column, type_=sa.BigInteger(), existing_nullable=False)

    # What is owed is not held: `owed` entries stop lowering the held balance and record the debt in
    # owed_change instead; `repay` entries keep lowering it and pay the debt down.
    op.add_column(
        "point_entries",
        sa.Column("owed_change", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.alter_column("point_entries", "owed_change", server_default=None)
    op.execute("UPDATE point_entries SET owed_change = -points, points = 0 WHERE kind = 'owed'")
    op.execute("UPDATE point_entries SET owed_change = points WHERE kind = 'repay'")

    op.add_column("member_code_uses", sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_point_entries_purchase",
        "point_entries",
        ["purchase_id"],
        postgresql_where=sa.text("purchase_id IS NOT NULL"),
    )
    op.create_index(
        "ix_check_in_attempts_member_fix",
        "check_in_attempts",
        ["member_id", sa.text("fix_at DESC")],
        postgresql_where=sa.text("outcome <> 'rejected'"),
    )
    op.create_index(
        "ix_point_lots_purchase",
        "point_lots",
        ["purchase_id"],
        postgresql_where=sa.text("purchase_id IS NOT NULL"),
    )
    _backfill_line_figures()


def downgrade() -> None:
    op.drop_index("ix_point_lots_purchase", table_name="point_lots")
    op.drop_index("ix_check_in_attempts_member_fix", table_name="check_in_attempts")
    op.drop_index("ix_point_entries_purchase", table_name="point_entries")
    op.drop_column("member_code_uses", "redeemed_at")
    op.execute("UPDATE point_entries SET points = -owed_change WHERE kind = 'owed'")
    op.drop_column("point_entries", "owed_change")
    for table, columns in WIDENED.items():
        for column in columns:
            op.alter_column(table, column, type_=sa.Integer(), existing_nullable=False)


def _split(total: int, weights: list[int]) -> list[int]:
    """`total` in proportion to `weights`, by cumulative floors (a copy: migrations do not import the app)."""
    whole = sum(weights)
    if whole == 0:
        return [0] * len(weights)
    shares, cumulative, previous = [], 0, 0
    for weight in weights:
        cumulative += weight
        upto = total * cumulative // whole
        shares.append(upto - previous)
        previous = upto
    return shares


def _amount(line: dict[str, Any]) -> int:
    return max(0, int(line["quantity"]) * int(line["unit_price_minor"]) - int(line.get("discount_minor", 0)))


def _line_figures(purchase: Any) -> list[dict[str, Any]]:
    """What each line of an existing sale earned and gave back, consistent with the sale's totals.

    Earnings follow the award as it was computed (each line's multiplier, non-earning lines excluded).
    What was already returned is shared by the lines in proportion to their figures, which never gives
    a line more than it earned; later returns then go by line.
    """
    lines = sorted(purchase.lines, key=lambda line: line["line_no"])
    applied = purchase.award.get("applied", [])
    excluded = {rule["line_no"] for rule in applied if rule["rule"] == "non_earning_line"}
    percent = {
        rule["line_no"]: rule["percent"]
        for rule in applied
        if rule.get("line_no") is not None and rule.get("percent") is not None
    }
    amounts = [_amount(line) for line in lines]
    paid_minor = _split(int(purchase.award.get("paid_with_points_minor", 0)), amounts)
    paid = [
        0 if line["line_no"] in excluded else a - p
        for line, a, p in zip(lines, amounts, paid_minor, strict=True)
    ]
    weights = [p * percent.get(line["line_no"], 100) for line, p in zip(lines, paid, strict=True)]
    points = _split(purchase.points_earned, weights)
    miles = _split(purchase.miles_earned, paid)
    points_paid = _split(purchase.points_redeemed, amounts)
    figures = []
    for line, amount, paid_points_minor, p, m, x, r, pr, mr, xr in zip(
        lines,
        amounts,
        paid_minor,
        points,
        miles,
        points_paid,
        _split(purchase.refunded_minor, amounts),
        _split(purchase.points_reversed, points),
        _split(purchase.miles_reversed, miles),
        _split(purchase.points_returned, points_paid),
        strict=True,
    ):
        figures.append(
            {
                **line,
                "refunded_quantity": int(line.get("refunded_quantity", 0)),
                "points_earned": p,
                "miles_earned": m,
                "points_paid": x,
                "paid_with_points_minor": paid_points_minor,
                "refunded_minor": min(r, amount),
                # Money handed back so far, by the rule later returns follow (cumulative share).
                "money_returned_minor": (amount - paid_points_minor) * min(r, amount) // amount
                if amount
                else 0,
                "points_reversed": pr,
                "miles_reversed": mr,
                "points_returned": xr,
            }
        )
    return figures


def _backfill_line_figures() -> None:
    connection = op.get_bind()
    purchases = connection.execute(
        sa.text(
            "SELECT id, lines, award, points_earned, miles_earned, points_redeemed, refunded_minor, "
            "points_reversed, miles_reversed, points_returned FROM purchases"
        )
    )
    update = sa.text("UPDATE purchases SET lines = CAST(:lines AS jsonb) WHERE id = :id")
    for purchase in purchases.all():
        connection.execute(update, {"id": purchase.id, "lines": json.dumps(_line_figures(purchase))})
