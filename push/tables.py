"""Push campaigns, their deliveries (one per campaign occurrence and device), and the audience profiles
that segments are evaluated against."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from domain.ids import new_id
from infra.db import Base, pg_enum


class CampaignState(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # its audience is (being) turned into deliveries
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


class DeliveryState(StrEnum):
    PENDING = "pending"  # waits for its due time (again, after a retryable failure)
    CLAIMED = "claimed"  # a worker holds it and has not handed it to FCM yet (safe to take back)
    SENDING = "sending"  # handed to FCM, answer awaited
    SENT = "sent"
    FAILED = "failed"  # given up on, with its reason
    SUPPRESSED = "suppressed"  # not sent, with its reason: cap, quiet hours, too late, no address
    CONTROL = "control"  # held back on purpose to measure the campaign
    CANCELLED = "cancelled"
    UNCONFIRMED = "unconfirmed"  # its worker died while FCM had it: maybe delivered, never resent


# Deliveries that count against a member's caps: on their way, or possibly delivered.
COUNTED_STATES = (
    DeliveryState.CLAIMED,
    DeliveryState.SENDING,
    DeliveryState.SENT,
    DeliveryState.UNCONFIRMED,
)
COUNTED_STATES_SQL = "(" + ", ".join(f"'{state.value}'" for state in COUNTED_STATES) + ")"


class Campaign(Base):
    __tablename__ = "push_campaigns"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120))
    state: Mapped[CampaignState] = mapped_column(pg_enum(CampaignState, "push_campaign_state"))
    transactional: Mapped[bool]
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)  # push.schemas.Variant
    deep_link: Mapped[str | None] = mapped_column(String(512))
    offer_id: Mapped[uuid.UUID | None]
    segment: Mapped[dict[str, Any]] = mapped_column(JSONB)  # push.rules.segments.Segment
    schedule: Mapped[dict[str, Any]] = mapped_column(JSONB)  # push.rules.scheduling.Schedule
    quiet_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # None: the policy's
    respect_quiet_hours: Mapped[bool]
    control_percent: Mapped[int] = mapped_column(SmallInteger)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    scheduled_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Occurrences up to this local date have their deliveries (one-off campaigns: their only one).
    materialized_through: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (Index("ix_push_campaigns_state", "state"),)


class Delivery(Base):
    """One campaign message to one device (or, for a member held back or out of reach, one row without a
    device). Unique per campaign occurrence and device: never two deliveries of one campaign to one
    device, whatever happens to the workers."""

    __tablename__ = "push_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("push_campaigns.id"))
    occurrence: Mapped[date] = mapped_column(Date)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    device_slot: Mapped[int | None] = mapped_column(SmallInteger)
    variant: Mapped[str] = mapped_column(String(16))
    transactional: Mapped[bool]
    time_zone: Mapped[str] = mapped_column(String(64))  # the member's, when it was planned
    state: Mapped[DeliveryState] = mapped_column(pg_enum(DeliveryState, "push_delivery_state"))
    reason: Mapped[str | None] = mapped_column(String(40))
    first_due_at: Mapped[datetime]
    due_at: Mapped[datetime]
    latest_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim_id: Mapped[uuid.UUID | None]
    claimed_at: Mapped[datetime | None]  # kept once sent: caps count what members were sent when
    lease_until: Mapped[datetime | None]  # the claiming worker renews it while it works
    address_kind: Mapped[str | None] = mapped_column(String(8))  # the address it was sent to
    address: Mapped[str | None] = mapped_column(String(1024))
    sent_at: Mapped[datetime | None]
    fcm_message: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint(
            "campaign_id",
            "occurrence",
            "member_id",
            "device_slot",
            name="uq_push_deliveries_once_per_device",
            postgresql_nulls_not_distinct=True,
        ),
        # Workers claim due deliveries in due order.
        Index("ix_push_deliveries_due", "due_at", postgresql_where=text("state = 'pending'")),
        # Caps count a member's messages claimed in their current week.
        Index(
            "ix_push_deliveries_member_claims",
            "member_id",
            "claimed_at",
            postgresql_where=text(f"state IN {COUNTED_STATES_SQL} AND NOT transactional"),
        ),
        # Claims whose worker died.
        Index(
            "ix_push_deliveries_in_flight",
            "lease_until",
            postgresql_where=text("state IN ('claimed', 'sending')"),
        ),
        Index("ix_push_deliveries_campaign", "campaign_id", "state"),
        # A phone gets a campaign once, even through two device rows (its address moved between logins).
        Index(
            "ix_push_deliveries_address",
            "address",
            "campaign_id",
            postgresql_where=text("address IS NOT NULL"),
        ),
    )


class AudienceProfile(Base):
    """What segments are evaluated against, per member: their traits as of `refreshed_at` (refreshed by
    the worker as members' activity changes, and daily as time passes)."""

    __tablename__ = "push_audience_profiles"

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    time_zone: Mapped[str] = mapped_column(String(64))
    lifecycle_stage: Mapped[str] = mapped_column(String(16))
    health_score: Mapped[int] = mapped_column(SmallInteger)
    recency: Mapped[int] = mapped_column(SmallInteger)
    frequency: Mapped[int] = mapped_column(SmallInteger)
    monetary: Mapped[int] = mapped_column(SmallInteger)
    favourite_store_id: Mapped[uuid.UUID | None]
    stage: Mapped[str] = mapped_column(String(16))
    engagement_hours: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))  # UTC hour of week
    refreshed_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_push_audience_profiles_lifecycle", "lifecycle_stage"),
        Index("ix_push_audience_profiles_refreshed", "refreshed_at"),
    )
