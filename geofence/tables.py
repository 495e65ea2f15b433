"""Check-ins (one per member, store and local day), every attempt (for fraud review), and review flags."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from domain.ids import new_id
from geofence.rules import Trigger
from infra.db import Base, pg_enum


class CheckIn(Base):
    __tablename__ = "check_ins"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stores.id"))
    local_day: Mapped[date] = mapped_column(Date)
    fix_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    trigger: Mapped[Trigger] = mapped_column(pg_enum(Trigger, "check_in_trigger"))
    latitude: Mapped[float] = mapped_column(Float(precision=53))
    longitude: Mapped[float] = mapped_column(Float(precision=53))
    accuracy_m: Mapped[float]
    distance_m: Mapped[float]
    points: Mapped[int] = mapped_column(BigInteger)
    miles: Mapped[int] = mapped_column(BigInteger)
    reward_withheld: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (
        # Once per store per local day, also under concurrent requests.
        UniqueConstraint("member_id", "store_id", "local_day", name="uq_check_ins_member_store_day"),
        Index("ix_check_ins_member_time", "member_id", text("fix_at DESC")),
    )


class CheckInAttempt(Base):
    """Every check-in request judged, accepted or not, with its evidence."""

    __tablename__ = "check_in_attempts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stores.id"))
    attempted_at: Mapped[datetime]
    fix_at: Mapped[datetime]
    latitude: Mapped[float] = mapped_column(Float(precision=53))
    longitude: Mapped[float] = mapped_column(Float(precision=53))
    accuracy_m: Mapped[float]
    trigger: Mapped[Trigger] = mapped_column(pg_enum(Trigger, "check_in_trigger"))
    mock_location: Mapped[bool]
    outcome: Mapped[str] = mapped_column(String(12))  # accepted, duplicate, rejected
    reason: Mapped[str | None] = mapped_column(String(40))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

    __table_args__ = (
        Index("ix_check_in_attempts_member", "member_id", text("attempted_at DESC")),
        Index("ix_check_in_attempts_rejected", "attempted_at", postgresql_where=text("outcome = 'rejected'")),
        # The travel check's neighbours: a member's honest positions by the time of their fix.
        Index(
            "ix_check_in_attempts_member_fix",
            "member_id",
            text("fix_at DESC"),
            postgresql_where=text("outcome <> 'rejected'"),
        ),
    )


class CheckInFlag(Base):
    """A member whose check-ins no longer earn anything, set by staff after fraud review."""

    __tablename__ = "check_in_flags"

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    flagged_at: Mapped[datetime]
    flagged_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id"))
    reason: Mapped[str] = mapped_column(String(300))
