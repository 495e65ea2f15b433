"""The offer catalogue, members' clips and uses of offers, the decision log, and the policy's versions."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from domain.ids import new_id
from infra.db import Base, pg_enum
from offers.rules.terms import OfferState


class Offer(Base):
    """One offer of the catalogue. The budget columns are checked by the database too: whatever runs
    concurrently, `*_used` never passes its budget."""

    __tablename__ = "offers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120))
    state: Mapped[OfferState] = mapped_column(pg_enum(OfferState, "offer_state"), index=True)
    terms: Mapped[dict[str, Any]] = mapped_column(JSONB)
    title: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(String(400))
    image_url: Mapped[str | None] = mapped_column(String(500))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    store_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid))
    audience: Mapped[dict[str, Any]] = mapped_column(JSONB)
    per_member_limit: Mapped[int] = mapped_column(Integer)
    budget_redemptions: Mapped[int | None] = mapped_column(BigInteger)
    budget_points: Mapped[int | None] = mapped_column(BigInteger)
    redemptions_used: Mapped[int] = mapped_column(BigInteger, default=0)
    points_used: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_points: Mapped[int] = mapped_column(Integer)  # expected cost of one use: the score's business weight
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint(
            "budget_redemptions IS NULL OR redemptions_used <= budget_redemptions", name="redemptions"
        ),
        CheckConstraint("budget_points IS NULL OR points_used <= budget_points", name="points"),
    )


class OfferActivation(Base):
    """A member clipped an offer (once: clipping again is the same clip)."""

    __tablename__ = "offer_activations"

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    offer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True)
    activated_at: Mapped[datetime]
    decision_id: Mapped[uuid.UUID | None]  # the decision that showed it, when one did
    redemptions: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_offer_activations_decision", "decision_id"),)


class OfferRedemption(Base):
    """An offer used on a sale: the points it earned (a points offer) or the discount (a coupon)."""

    __tablename__ = "offer_redemptions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    offer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    purchase_id: Mapped[uuid.UUID]
    decision_id: Mapped[uuid.UUID | None]
    redeemed_at: Mapped[datetime]
    points: Mapped[int] = mapped_column(BigInteger)
    amount_off_minor: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("offer_id", "purchase_id"),
        Index("ix_offer_redemptions_decision", "decision_id"),
    )


class OfferDecision(Base):
    """One choice of offers for a member, with what the policy knew (its context and candidates)."""

    __tablename__ = "offer_decisions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    decided_at: Mapped[datetime]
    policy_version: Mapped[int] = mapped_column(Integer)
    store_id: Mapped[uuid.UUID | None]
    context: Mapped[dict[str, Any]] = mapped_column(JSONB)
    candidates: Mapped[list[Any]] = mapped_column(JSONB)
    learned_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_offer_decisions_member_time", "member_id", text("decided_at DESC")),
        Index("ix_offer_decisions_to_learn", "decided_at", postgresql_where=text("learned_at IS NULL")),
    )


class OfferDecisionItem(Base):
    """One offer a decision chose, its slot, and the probability the policy gave it for that slot."""

    __tablename__ = "offer_decision_items"

    decision_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("offer_decisions.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    offer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID]
    decided_at: Mapped[datetime]
    propensity: Mapped[float] = mapped_column(Double)
    uniform_propensity: Mapped[float] = mapped_column(Double)  # 1 / candidates left for the slot
    why: Mapped[str] = mapped_column(String(120))  # the line the member was shown

    __table_args__ = (
        Index("ix_offer_decision_items_member_offer", "member_id", "offer_id", text("decided_at DESC")),
        Index("ix_offer_decision_items_offer", "offer_id"),
    )


class OfferPolicyVersion(Base):
    """A learned model; the newest serves. Each version is the previous one plus a batch of rewards."""

    __tablename__ = "offer_policy_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime]
    model: Mapped[bytes] = mapped_column(LargeBinary)
    observations: Mapped[int] = mapped_column(BigInteger)
    decisions_learned: Mapped[int] = mapped_column(BigInteger)
