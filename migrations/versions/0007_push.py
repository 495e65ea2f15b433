"""push campaigns: push addresses on member devices, campaigns, deliveries, audience profiles

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "push_audience_profiles",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("lifecycle_stage", sa.String(length=16), nullable=False),
        sa.Column("health_score", sa.SmallInteger(), nullable=False),
        sa.Column("recency", sa.SmallInteger(), nullable=False),
        sa.Column("frequency", sa.SmallInteger(), nullable=False),
        sa.Column("monetary", sa.SmallInteger(), nullable=False),
        sa.Column("favourite_store_id", sa.Uuid(), nullable=True),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("engagement_hours", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_push_audience_profiles_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_push_audience_profiles")),
    )
    op.create_index(
        "ix_push_audience_profiles_lifecycle", "push_audience_profiles", ["lifecycle_stage"], unique=False
    )
    op.create_index(
        "ix_push_audience_profiles_refreshed", "push_audience_profiles", ["refreshed_at"], unique=False
    )
    op.create_table(
        "push_campaigns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column(
            "state",
            sa.Enum("draft", "scheduled", "sending", "done", "cancelled", name="push_campaign_state"),
            nullable=False,
        ),
        sa.Column("transactional", sa.Boolean(), nullable=False),
        sa.Column("variants", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("deep_link", sa.String(length=512), nullable=True),
        sa.Column("offer_id", sa.Uuid(), nullable=True),
        sa.Column("segment", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("schedule", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("quiet_hours", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("respect_quiet_hours", sa.Boolean(), nullable=False),
        sa.Column("control_percent", sa.SmallInteger(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("materialized_through", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["staff.id"], name=op.f("fk_push_campaigns_created_by_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_campaigns")),
    )
    op.create_index("ix_push_campaigns_state", "push_campaigns", ["state"], unique=False)
    op.create_table(
        "push_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("occurrence", sa.Date(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("device_slot", sa.SmallInteger(), nullable=True),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("transactional", sa.Boolean(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "claimed",
                "sending",
                "sent",
                "failed",
                "suppressed",
                "control",
                "cancelled",
                "unconfirmed",
                name="push_delivery_state",
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("first_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latest_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claim_id", sa.Uuid(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("address_kind", sa.String(length=8), nullable=True),
        sa.Column("address", sa.String(length=1024), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fcm_message", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["push_campaigns.id"], name=op.f("fk_push_deliveries_campaign_id_push_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_push_deliveries_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_deliveries")),
        sa.UniqueConstraint(
            "campaign_id",
            "occurrence",
            "member_id",
            "device_slot",
            name="uq_push_deliveries_once_per_device",
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_index("ix_push_deliveries_campaign", "push_deliveries", ["campaign_id", "state"], unique=False)
    op.create_index(
        "ix_push_deliveries_address",
        "push_deliveries",
        ["address", "campaign_id"],
        unique=False,
        postgresql_where=sa.text("address IS NOT NULL"),
    )
    op.create_index(
        "ix_push_deliveries_due",
        "push_deliveries",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_push_deliveries_in_flight",
        "push_deliveries",
        ["lease_until"],
        unique=False,
        postgresql_where=sa.text("state IN ('claimed', 'sending')"),
    )
    op.create_index(
        "ix_push_deliveries_member_claims",
        "push_deliveries",
        ["member_id", "claimed_at"],
        unique=False,
        postgresql_where=sa.text(
            "state IN ('claimed', 'sending', 'sent', 'unconfirmed') AND NOT transactional"
        ),
    )
    op.add_column("member_devices", sa.Column("push_kind", sa.String(length=8), nullable=True))
    op.add_column("member_devices", sa.Column("push_address", sa.String(length=1024), nullable=True))
    op.add_column("member_devices", sa.Column("platform", sa.String(length=16), nullable=True))
    op.add_column("member_devices", sa.Column("app_version", sa.String(length=40), nullable=True))
    op.add_column("member_devices", sa.Column("locale", sa.String(length=35), nullable=True))
    op.add_column("member_devices", sa.Column("notification_permission", sa.String(length=16), nullable=True))
    op.add_column("member_devices", sa.Column("push_refreshed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("member_devices", sa.Column("push_disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("member_devices", sa.Column("push_disabled_reason", sa.String(length=40), nullable=True))
    op.add_column("member_devices", sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "uq_member_devices_push_address",
        "member_devices",
        ["push_address"],
        unique=True,
        postgresql_where=sa.text("push_address IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_member_devices_push_address",
        table_name="member_devices",
        postgresql_where=sa.text("push_address IS NOT NULL"),
    )
    op.drop_column("member_devices", "last_seen_at")
    op.drop_column("member_devices", "push_disabled_reason")
    op.drop_column("member_devices", "push_disabled_at")
    op.drop_column("member_devices", "push_refreshed_at")
    op.drop_column("member_devices", "notification_permission")
    op.drop_column("member_devices", "locale")
    op.drop_column("member_devices", "app_version")
    op.drop_column("member_devices", "platform")
    op.drop_column("member_devices", "push_address")
    op.drop_column("member_devices", "push_kind")
    op.drop_index(
        "ix_push_deliveries_member_claims",
        table_name="push_deliveries",
        postgresql_where=sa.text(
            "state IN ('claimed', 'sending', 'sent', 'unconfirmed') AND NOT transactional"
        ),
    )
    op.drop_index(
        "ix_push_deliveries_in_flight",
        table_name="push_deliveries",
        postgresql_where=sa.text("state IN ('claimed', 'sending')"),
    )
    op.drop_index(
        "ix_push_deliveries_due", table_name="push_deliveries", postgresql_where=sa.text("state = 'pending'")
    )
    op.drop_index("ix_push_deliveries_campaign", table_name="push_deliveries")
    op.drop_index(
        "ix_push_deliveries_address",
        table_name="push_deliveries",
        postgresql_where=sa.text("address IS NOT NULL"),
    )
    op.drop_table("push_deliveries")
    op.drop_index("ix_push_campaigns_state", table_name="push_campaigns")
    op.drop_table("push_campaigns")
    op.drop_index("ix_push_audience_profiles_refreshed", table_name="push_audience_profiles")
    op.drop_index("ix_push_audience_profiles_lifecycle", table_name="push_audience_profiles")
    op.drop_table("push_audience_profiles")
    op.execute("DROP TYPE push_delivery_state")
    op.execute("DROP TYPE push_campaign_state")
