"""offers: catalogue, clips and uses, the decision log, policy versions; the offer_activated event kind

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "offer_policy_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.Column("observations", sa.BigInteger(), nullable=False),
        sa.Column("decisions_learned", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_offer_policy_versions")),
    )
    op.create_table(
        "offers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("state", sa.Enum("draft", "active", "paused", "ended", name="offer_state"), nullable=False),
        sa.Column("terms", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("title", sa.String(length=80), nullable=False),
        sa.Column("body", sa.String(length=400), nullable=False),
        sa.Column("image_url", sa.String(length=500), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("store_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("audience", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("per_member_limit", sa.Integer(), nullable=False),
        sa.Column("budget_redemptions", sa.BigInteger(), nullable=True),
        sa.Column("budget_points", sa.BigInteger(), nullable=True),
        sa.Column("redemptions_used", sa.BigInteger(), nullable=False),
        sa.Column("points_used", sa.BigInteger(), nullable=False),
        sa.Column("cost_points", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "budget_points IS NULL OR points_used <= budget_points", name=op.f("ck_offers_points")
        ),
        sa.CheckConstraint(
            "budget_redemptions IS NULL OR redemptions_used <= budget_redemptions",
            name=op.f("ck_offers_redemptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
    )
    op.create_index(op.f("ix_offers_state"), "offers", ["state"], unique=False)
    op.create_table(
        "offer_activations",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("offer_id", sa.Uuid(), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=True),
        sa.Column("redemptions", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_offer_activations_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_offer_activations_offer_id_offers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("member_id", "offer_id", name=op.f("pk_offer_activations")),
    )
    op.create_index("ix_offer_activations_decision", "offer_activations", ["decision_id"], unique=False)
    op.create_table(
        "offer_decisions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=True),
        sa.Column("context", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("candidates", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_offer_decisions_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer_decisions")),
    )
    op.create_index(
        "ix_offer_decisions_member_time",
        "offer_decisions",
        ["member_id", sa.literal_column("decided_at DESC")],
        unique=False,
    )
    op.create_index(
        "ix_offer_decisions_to_learn",
        "offer_decisions",
        ["decided_at"],
        unique=False,
        postgresql_where=sa.text("learned_at IS NULL"),
    )
    op.create_table(
        "offer_redemptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("offer_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("amount_off_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_offer_redemptions_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_offer_redemptions_offer_id_offers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer_redemptions")),
        sa.UniqueConstraint("offer_id", "purchase_id", name=op.f("uq_offer_redemptions_offer_id")),
    )
    op.create_index("ix_offer_redemptions_decision", "offer_redemptions", ["decision_id"], unique=False)
    op.create_index(op.f("ix_offer_redemptions_member_id"), "offer_redemptions", ["member_id"], unique=False)
    op.create_table(
        "offer_decision_items",
        sa.Column("decision_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("offer_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("propensity", sa.Double(), nullable=False),
        sa.Column("uniform_propensity", sa.Double(), nullable=False),
        sa.Column("why", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["offer_decisions.id"],
            name=op.f("fk_offer_decision_items_decision_id_offer_decisions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["offers.id"],
            name=op.f("fk_offer_decision_items_offer_id_offers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("decision_id", "position", name=op.f("pk_offer_decision_items")),
    )
    op.create_index(
        "ix_offer_decision_items_member_offer",
        "offer_decision_items",
        ["member_id", "offer_id", sa.literal_column("decided_at DESC")],
        unique=False,
    )
    op.create_index("ix_offer_decision_items_offer", "offer_decision_items", ["offer_id"], unique=False)
    # ADD VALUE cannot run inside a transaction block on older PostgreSQL; autocommit_block is safe everywhere.
    with op.get_context().autocommit_block():
        op.execute(
            "ALTER TYPE interaction_kind ADD VALUE IF NOT EXISTS 'offer_activated' AFTER 'offer_decided'"
        )


def downgrade() -> None:
    op.drop_index("ix_offer_decision_items_offer", table_name="offer_decision_items")
    op.drop_index("ix_offer_decision_items_member_offer", table_name="offer_decision_items")
    op.drop_table("offer_decision_items")
    op.drop_index(op.f("ix_offer_redemptions_member_id"), table_name="offer_redemptions")
    op.drop_index("ix_offer_redemptions_decision", table_name="offer_redemptions")
    op.drop_table("offer_redemptions")
    op.drop_index(
        "ix_offer_decisions_to_learn",
        table_name="offer_decisions",
        postgresql_where=sa.text("learned_at IS NULL"),
    )
    op.drop_index("ix_offer_decisions_member_time", table_name="offer_decisions")
    op.drop_table("offer_decisions")
    op.drop_index("ix_offer_activations_decision", table_name="offer_activations")
    op.drop_table("offer_activations")
    op.drop_index(op.f("ix_offers_state"), table_name="offers")
    op.drop_table("offers")
    op.drop_table("offer_policy_versions")
    op.execute("DROP TYPE offer_state")
    # PostgreSQL cannot drop an enum value; events of that kind go with the downgrade's data loss.
    op.execute("DELETE FROM timeline_events WHERE kind = 'offer_activated'")
