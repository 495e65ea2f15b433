"""Timeline tables: the partitioned event log, client-event receipts, and the trait inputs kept per member."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from domain.interactions import Channel, InteractionKind, SubjectType
from infra.db import Base, pg_enum

# Rows of member_daily_activity that belong to no store use this key (a primary key cannot be NULL).
NO_STORE = uuid.UUID(int=0)


class TimelineEvent(Base):
    """One interaction. Range-partitioned by month of `occurred_at` (see timeline.partitions).

    Deliberately without foreign keys: it is the largest table, written on every interaction and
    archived a partition at a time; ids are checked where events are recorded.
    """

    __tablename__ = "timeline_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(primary_key=True)
    recorded_at: Mapped[datetime]
    member_id: Mapped[uuid.UUID | None]
    kind: Mapped[InteractionKind] = mapped_column(pg_enum(InteractionKind, "interaction_kind"))
    channel: Mapped[Channel] = mapped_column(pg_enum(Channel, "interaction_channel"))
    store_id: Mapped[uuid.UUID | None]
    subject_type: Mapped[SubjectType | None] = mapped_column(pg_enum(SubjectType, "interaction_subject"))
    subject_ref: Mapped[str | None] = mapped_column(String(64))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

    __table_args__ = (
        # "One member, newest first" and "one store, time range", without sequential scans.
        Index(
            "ix_timeline_events_member_time",
            "member_id",
            text("occurred_at DESC"),
            text("id DESC"),
            postgresql_where=text("member_id IS NOT NULL"),
        ),
        Index(
            "ix_timeline_events_store_time",
            "store_id",
            text("occurred_at DESC"),
            postgresql_where=text("store_id IS NOT NULL"),
        ),
        {"postgresql_partition_by": "RANGE (occurred_at)"},
    )


class AppEventReceipt(Base):
    """Which client event ids a member's app already delivered: makes the events endpoint idempotent.

    Kept apart from the partitioned log because a unique key there would have to include the month.
    """

    __tablename__ = "app_event_receipts"

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    client_event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[uuid.UUID]
    received_at: Mapped[datetime] = mapped_column(index=True)


class MemberDailyActivity(Base):
    """Per member, UTC day and store: sums of what the day's events add (timeline.traits.DailyDelta)."""

    __tablename__ = "member_daily_activity"

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    store_key: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    interactions: Mapped[int]
    purchases: Mapped[int]
    spend_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger)
    check_ins: Mapped[int]
    app_opens: Mapped[int]
    push_opens: Mapped[int]


class MemberTraitCounters(Base):
    """Lifetime trait inputs (timeline.traits.TraitCounters), one JSON document per member."""

    __tablename__ = "member_trait_counters"

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    counters: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime]


class PendingTraitFold(Base):
    """An event recorded (in its fact's transaction) but not yet folded into its member's trait inputs.

    The worker folds queued events after commit (timeline.recording.fold_pending) and deletes their
    rows in the same transaction, so each event is folded exactly once.
    """

    __tablename__ = "pending_trait_folds"

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime]  # with the id, the event's key in the partitioned log
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)


class PopulationEngagement(Base):
    """Everyone's engagement per UTC hour of the week (the members' histograms summed), one row
    refreshed by the worker: what a member with few signals of their own is blended toward."""

    __tablename__ = "population_engagement"

    id: Mapped[int] = mapped_column(primary_key=True)
    hours: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    members: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
