"""points ledger: accounts, lots, entries, miles, devices, code uses, purchases, refunds, idempotency keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("request_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"], unique=False)
    op.create_table(
        "member_code_uses",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_member_code_uses")),
    )
    op.create_index(op.f("ix_member_code_uses_expires_at"), "member_code_uses", ["expires_at"], unique=False)
    op.create_table(
        "member_devices",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("secret_salt", sa.LargeBinary(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_devices_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", "slot", name=op.f("pk_member_devices")),
    )
    op.create_table(
        "member_miles",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("miles", sa.BigInteger(), nullable=False),
        sa.Column("bonus_stages", postgresql.ARRAY(sa.String(length=16)), nullable=False),
        sa.CheckConstraint("miles >= 0", name=op.f("ck_member_miles_miles_not_negative")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_miles_member_id_members"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("member_id", "period_start", name=op.f("pk_member_miles")),
    )
    op.create_table(
        "point_accounts",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("lifetime_earned", sa.BigInteger(), nullable=False),
        sa.Column("lifetime_redeemed", sa.BigInteger(), nullable=False),
        sa.Column("lifetime_expired", sa.BigInteger(), nullable=False),
        sa.Column("owed", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("owed >= 0", name=op.f("ck_point_accounts_owed_not_negative")),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_point_accounts_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_point_accounts")),
    )
    op.create_table(
        "purchases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.Column("terminal_id", sa.Uuid(), nullable=False),
        sa.Column("receipt_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column("sold_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("points_redeemed", sa.Integer(), nullable=False),
        sa.Column("points_earned", sa.Integer(), nullable=False),
        sa.Column("miles_earned", sa.Integer(), nullable=False),
        sa.Column("award", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("points_reversed", sa.Integer(), nullable=False),
        sa.Column("miles_reversed", sa.Integer(), nullable=False),
        sa.Column("points_returned", sa.Integer(), nullable=False),
        sa.CheckConstraint("refunded_minor <= total_minor", name=op.f("ck_purchases_refund_within_total")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_purchases_member_id_members")),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_purchases_store_id_stores")),
        sa.ForeignKeyConstraint(
            ["terminal_id"], ["pos_terminals.id"], name=op.f("fk_purchases_terminal_id_pos_terminals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchases")),
        sa.UniqueConstraint("store_id", "receipt_id", name="uq_purchases_store_receipt"),
    )
    op.create_index(op.f("ix_purchases_member_id"), "purchases", ["member_id"], unique=False)
    op.create_table(
        "point_lots",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=True),
        sa.Column(
            "source",
            sa.Enum(
                "earn",
                "bonus",
                "redeem",
                "return",
                "reverse",
                "owed",
                "repay",
                "expire",
                name="point_entry_kind",
            ),
            nullable=False,
        ),
        sa.Column("earned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= amount", name=op.f("ck_point_lots_remaining_within_amount")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_point_lots_member_id_members"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["purchase_id"], ["purchases.id"], name=op.f("fk_point_lots_purchase_id_purchases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_lots")),
    )
    op.create_index(
        "ix_point_lots_due",
        "point_lots",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_index(
        "ix_point_lots_member_open",
        "point_lots",
        ["member_id", "expires_at"],
        unique=False,
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.Column("terminal_id", sa.Uuid(), nullable=False),
        sa.Column("refund_receipt_id", sa.String(length=64), nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("points_reversed", sa.Integer(), nullable=False),
        sa.Column("miles_reversed", sa.Integer(), nullable=False),
        sa.Column("points_returned", sa.Integer(), nullable=False),
        sa.Column("points_owed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["purchase_id"], ["purchases.id"], name=op.f("fk_refunds_purchase_id_purchases")
        ),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_refunds_store_id_stores")),
        sa.ForeignKeyConstraint(
            ["terminal_id"], ["pos_terminals.id"], name=op.f("fk_refunds_terminal_id_pos_terminals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("store_id", "refund_receipt_id", name="uq_refunds_store_receipt"),
    )
    op.create_index(op.f("ix_refunds_purchase_id"), "refunds", ["purchase_id"], unique=False)
    op.create_table(
        "point_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "earn",
                "bonus",
                "redeem",
                "return",
                "reverse",
                "owed",
                "repay",
                "expire",
                name="point_entry_kind",
            ),
            nullable=False,
        ),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("miles", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Uuid(), nullable=True),
        sa.Column("purchase_id", sa.Uuid(), nullable=True),
        sa.Column("refund_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["point_lots.id"], name=op.f("fk_point_entries_lot_id_point_lots")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_point_entries_member_id_members"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["purchase_id"], ["purchases.id"], name=op.f("fk_point_entries_purchase_id_purchases")
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"], ["refunds.id"], name=op.f("fk_point_entries_refund_id_refunds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_entries")),
    )
    op.create_index(
        "ix_point_entries_member", "point_entries", ["member_id", sa.literal_column("id DESC")], unique=False
    )
    op.add_column("refresh_tokens", sa.Column("device_slot", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("refresh_tokens", "device_slot")
    op.drop_index("ix_point_entries_member", table_name="point_entries")
    op.drop_table("point_entries")
    op.drop_index(op.f("ix_refunds_purchase_id"), table_name="refunds")
    op.drop_table("refunds")
    op.drop_index(
        "ix_point_lots_member_open", table_name="point_lots", postgresql_where=sa.text("remaining > 0")
    )
    op.drop_index("ix_point_lots_due", table_name="point_lots", postgresql_where=sa.text("remaining > 0"))
    op.drop_table("point_lots")
    op.drop_index(op.f("ix_purchases_member_id"), table_name="purchases")
    op.drop_table("purchases")
    op.drop_table("point_accounts")
    op.drop_table("member_miles")
    op.drop_table("member_devices")
    sa.Enum(name="point_entry_kind").drop(op.get_bind())
    op.drop_index(op.f("ix_member_code_uses_expires_at"), table_name="member_code_uses")
    op.drop_table("member_code_uses")
    op.drop_index(op.f("ix_idempotency_keys_expires_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
