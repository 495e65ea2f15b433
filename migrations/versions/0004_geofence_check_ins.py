"""geofence check-ins: check-ins, attempts, review flags; store fences, hours, catalogue version

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "store_catalog_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_catalog_version")),
    )
    op.create_table(
        "check_in_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fix_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latitude", sa.Float(precision=53), nullable=False),
        sa.Column("longitude", sa.Float(precision=53), nullable=False),
        sa.Column("accuracy_m", sa.Double(), nullable=False),
        sa.Column(
            "trigger",
            sa.Enum("user_tap", "geofence_enter", "geofence_dwell", name="check_in_trigger"),
            nullable=False,
        ),
        sa.Column("mock_location", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column(
            "evidence",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_check_in_attempts_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_check_in_attempts_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_in_attempts")),
    )
    op.create_index(
        "ix_check_in_attempts_member",
        "check_in_attempts",
        ["member_id", sa.literal_column("attempted_at DESC")],
        unique=False,
    )
    op.create_index(
        "ix_check_in_attempts_rejected",
        "check_in_attempts",
        ["attempted_at"],
        unique=False,
        postgresql_where=sa.text("outcome = 'rejected'"),
    )
    op.create_table(
        "check_in_flags",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flagged_by", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["flagged_by"], ["staff.id"], name=op.f("fk_check_in_flags_flagged_by_staff")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_check_in_flags_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_check_in_flags")),
    )
    op.create_table(
        "check_ins",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("fix_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "trigger",
            sa.Enum("user_tap", "geofence_enter", "geofence_dwell", name="check_in_trigger"),
            nullable=False,
        ),
        sa.Column("latitude", sa.Float(precision=53), nullable=False),
        sa.Column("longitude", sa.Float(precision=53), nullable=False),
        sa.Column("accuracy_m", sa.Double(), nullable=False),
        sa.Column("distance_m", sa.Double(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("miles", sa.Integer(), nullable=False),
        sa.Column("reward_withheld", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_check_ins_member_id_members"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name=op.f("fk_check_ins_store_id_stores")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_ins")),
        sa.UniqueConstraint("member_id", "store_id", "local_day", name="uq_check_ins_member_store_day"),
    )
    op.create_index(
        "ix_check_ins_member_time", "check_ins", ["member_id", sa.literal_column("fix_at DESC")], unique=False
    )
    op.add_column(
        "stores", sa.Column("opening_hours", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column(
        "stores", sa.Column("fence_polygon", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column(
        "stores", sa.Column("geofence_enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False)
    )


def downgrade() -> None:
    op.drop_column("stores", "geofence_enabled")
    op.drop_column("stores", "fence_polygon")
    op.drop_column("stores", "opening_hours")
    op.drop_index("ix_check_ins_member_time", table_name="check_ins")
    op.drop_table("check_ins")
    op.drop_table("check_in_flags")
    op.drop_index(
        "ix_check_in_attempts_rejected",
        table_name="check_in_attempts",
        postgresql_where=sa.text("outcome = 'rejected'"),
    )
    op.drop_index("ix_check_in_attempts_member", table_name="check_in_attempts")
    op.drop_table("check_in_attempts")
    op.drop_table("store_catalog_version")
    sa.Enum(name="check_in_trigger").drop(op.get_bind())
