"""Points ledger tables: accounts, lots, entries, miles, member devices and code uses, purchases, refunds."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from domain.ids import new_id
from infra.db import Base, pg_enum


class EntryKind(StrEnum):
    EARN = "earn"  # points of a purchase (or another earning action) added as a lot
    BONUS = "bonus"  # one-off stage bonus
    REDEEM = "redeem"  # points paid at the register
    RETURN = "return"  # redeemed points given back by a refund
    REVERSE = "reverse"  # earned points taken back by a refund
    OWED = "owed"  # the part of a reversal that was already spent: a negative adjustment
    REPAY = "repay"  # new earnings paying off what is owed
    EXPIRE = "expire"  # a lot reached its expiry date


class MemberCodeUse(Base):
    """A member code used for a completed purchase, kept while valid: it cannot be used at another store
    meanwhile, and it pays with points at most once (`redeemed_at`)."""

    __tablename__ = "member_code_uses"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[uuid.UUID]
    used_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    redeemed_at: Mapped[datetime | None]


class PointAccount(Base):
    """Per member: the row redemptions lock (so balances cannot go negative) and the running totals."""

    __tablename__ = "point_accounts"

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    lifetime_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_expired: Mapped[int] = mapped_column(BigInteger, default=0)
    owed: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]

    __table_args__ = (CheckConstraint("owed >= 0", name="owed_not_negative"),)


class PointLot(Base):
    """Points earned together, spendable from `available_at` until `expires_at` (both fixed when earned)."""

    __tablename__ = "point_lots"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    purchase_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("purchases.id"))
    source: Mapped[EntryKind] = mapped_column(pg_enum(EntryKind, "point_entry_kind"))
    earned_at: Mapped[datetime]
    available_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_within_amount"),
        Index("ix_point_lots_member_open", "member_id", "expires_at", postgresql_where=text("remaining > 0")),
        Index("ix_point_lots_due", "expires_at", postgresql_where=text("remaining > 0")),
        # A refund finds the lots of its sale without scanning a member's (or everyone's) lots.
        Index("ix_point_lots_purchase", "purchase_id", postgresql_where=text("purchase_id IS NOT NULL")),
    )


class PointEntry(Base):
    """The append-only ledger: every change of points (and the miles that came with it), with its reason."""

    __tablename__ = "point_entries"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[EntryKind] = mapped_column(pg_enum(EntryKind, "point_entry_kind"))
    points: Mapped[int] = mapped_column(BigInteger)  # change of the points held (points.ledger)
    owed_change: Mapped[int] = mapped_column(BigInteger, default=0)  # change of what is owed
    miles: Mapped[int] = mapped_column(BigInteger, default=0)
    lot_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("point_lots.id"))
    purchase_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("purchases.id"))
    refund_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("refunds.id"))
    reason: Mapped[str] = mapped_column(String(300))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

    __table_args__ = (
        Index("ix_point_entries_member", "member_id", text("id DESC")),
        Index("ix_point_entries_purchase", "purchase_id", postgresql_where=text("purchase_id IS NOT NULL")),
    )


class MemberMiles(Base):
    """Miles earned in one period (they reset yearly) and the stages whose bonus was granted in it."""

    __tablename__ = "member_miles"

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    period_start: Mapped[datetime] = mapped_column(primary_key=True)
    miles: Mapped[int] = mapped_column(BigInteger)
    bonus_stages: Mapped[list[str]] = mapped_column(ARRAY(String(16)))

    __table_args__ = (CheckConstraint("miles >= 0", name="miles_not_negative"),)


class Purchase(Base):
    """A sale posted by a POS terminal; `(store_id, receipt_id)` makes re-posting a receipt harmless."""

    __tablename__ = "purchases"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stores.id"))
    terminal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pos_terminals.id"))
    receipt_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("members.id"), index=True)
    sold_at: Mapped[datetime]
    posted_at: Mapped[datetime]
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)  # points.rules.refunds.StoredLine
    points_redeemed: Mapped[int] = mapped_column(BigInteger)
    points_earned: Mapped[int] = mapped_column(BigInteger)
    miles_earned: Mapped[int] = mapped_column(BigInteger)
    award: Mapped[dict[str, Any]] = mapped_column(JSONB)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    points_reversed: Mapped[int] = mapped_column(BigInteger, default=0)
    miles_reversed: Mapped[int] = mapped_column(BigInteger, default=0)
    points_returned: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (
        UniqueConstraint("store_id", "receipt_id", name="uq_purchases_store_receipt"),
        CheckConstraint("refunded_minor <= total_minor", name="refund_within_total"),
    )


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    purchase_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("purchases.id"), index=True)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stores.id"))
    terminal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pos_terminals.id"))
    refund_receipt_id: Mapped[str] = mapped_column(String(64))
    refunded_at: Mapped[datetime]
    posted_at: Mapped[datetime]
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)  # points.rules.refunds.LineRefund
    points_reversed: Mapped[int] = mapped_column(BigInteger)
    miles_reversed: Mapped[int] = mapped_column(BigInteger)
    points_returned: Mapped[int] = mapped_column(BigInteger)
    points_owed: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("store_id", "refund_receipt_id", name="uq_refunds_store_receipt"),)
