"""timeline: partitioned interaction log, client event receipts, trait inputs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "timeline_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "member_joined",
                "profile_updated",
                "app_opened",
                "content_viewed",
                "offer_viewed",
                "offer_decided",
                "offer_redeemed",
                "push_sent",
                "push_received",
                "push_opened",
                "checked_in",
                "check_in_rejected",
                "purchased",
                "points_earned",
                "points_redeemed",
                "points_expired",
                "points_adjusted",
                "refunded",
                "stage_reached",
                "shared",
                "review_written",
                name="interaction_kind",
            ),
            nullable=False,
        ),
        sa.Column(
            "channel",
            sa.Enum("app", "pos", "geofence", "push", "console", "system", name="interaction_channel"),
            nullable=False,
        ),
        sa.Column("store_id", sa.Uuid(), nullable=True),
        sa.Column(
            "subject_type",
            sa.Enum("offer", "campaign", "content", "transaction", "product", name="interaction_subject"),
            nullable=True,
        ),
        sa.Column("subject_ref", sa.String(length=64), nullable=True),
        sa.Column(
            "properties",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", "occurred_at", name=op.f("pk_timeline_events")),
        postgresql_partition_by="RANGE (occurred_at)",
    )
    # A DEFAULT partition so no event is ever refused; months from two years back to three ahead.
    # The app keeps creating months ahead (timeline.partitions.ensure_partitions).
    op.execute("CREATE TABLE timeline_events_default PARTITION OF timeline_events DEFAULT")
    op.execute(
        """
        DO $$
        DECLARE
            month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC') - interval '24 months';
        BEGIN
            WHILE month <= date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months' LOOP
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF timeline_events FOR VALUES FROM (%L) TO (%L)',
                    'timeline_events_' || to_char(month, 'YYYY_MM'),
                    month AT TIME ZONE 'UTC',
                    (month + interval '1 month') AT TIME ZONE 'UTC'
                );
                month := month + interval '1 month';
            END LOOP;
        END $$
        """
    )
    op.create_index(
        "ix_timeline_events_member_time",
        "timeline_events",
        ["member_id", sa.literal_column("occurred_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("member_id IS NOT NULL"),
    )
    op.create_index(
        "ix_timeline_events_store_time",
        "timeline_events",
        ["store_id", sa.literal_column("occurred_at DESC")],
        unique=False,
        postgresql_where=sa.text("store_id IS NOT NULL"),
    )
    op.create_table(
        "app_event_receipts",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("client_event_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_app_event_receipts_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", "client_event_id", name=op.f("pk_app_event_receipts")),
    )
    op.create_index(
        op.f("ix_app_event_receipts_received_at"), "app_event_receipts", ["received_at"], unique=False
    )
    op.create_table(
        "member_daily_activity",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("store_key", sa.Uuid(), nullable=False),
        sa.Column("interactions", sa.Integer(), nullable=False),
        sa.Column("purchases", sa.Integer(), nullable=False),
        sa.Column("spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("check_ins", sa.Integer(), nullable=False),
        sa.Column("app_opens", sa.Integer(), nullable=False),
        sa.Column("push_opens", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_daily_activity_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", "day", "store_key", name=op.f("pk_member_daily_activity")),
    )
    op.create_table(
        "member_trait_counters",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("counters", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_trait_counters_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_trait_counters")),
    )


def downgrade() -> None:
    op.drop_table("member_trait_counters")
    op.drop_table("member_daily_activity")
    op.drop_index(op.f("ix_app_event_receipts_received_at"), table_name="app_event_receipts")
    op.drop_table("app_event_receipts")
    op.drop_index(
        "ix_timeline_events_store_time",
        table_name="timeline_events",
        postgresql_where=sa.text("store_id IS NOT NULL"),
    )
    op.drop_index(
        "ix_timeline_events_member_time",
        table_name="timeline_events",
        postgresql_where=sa.text("member_id IS NOT NULL"),
    )
    op.drop_table("timeline_events")
    for enum_name in ("interaction_subject", "interaction_channel", "interaction_kind"):
        sa.Enum(name=enum_name).drop(op.get_bind())
