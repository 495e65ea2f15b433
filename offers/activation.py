"""A member clips an offer in the app: once (clipping again answers the same clip), only while the offer
is open to them, and linked to the decision that showed it, which is the policy's reward."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from domain.interactions import Channel, InteractionKind, SubjectType
from infra.db import UnitOfWork
from offers.catalogue import facts_of, terms_of
from offers.errors import OfferNotAvailable, OfferNotFound
from offers.rules.eligibility import MemberUse, ineligible
from offers.schemas import Activation
from offers.selection import traits_now
from offers.tables import Offer, OfferActivation, OfferDecisionItem
from timeline.recording import record
from timeline.rules import EventDraft


async def activate_offer(
    uow: UnitOfWork, member_id: uuid.UUID, offer_id: uuid.UUID, now: datetime
) -> Activation:
    offer = await uow.session.get(Offer, offer_id)
    if offer is None:
        raise OfferNotFound(offer_id=str(offer_id))
    existing = await uow.session.get(OfferActivation, (member_id, offer_id))
    if existing is not None:
        return _view(offer, existing)
    _, traits = await traits_now(uow, member_id, now)
    reason = ineligible(
        facts_of(offer, terms_of(offer)), MemberUse(), traits, None, now, clipped_counts=False
    )
    if reason is not None:
        raise OfferNotAvailable(reason=reason.value)
    decision_id = await _showing_decision(uow, member_id, offer_id, now)
    inserted = await uow.session.execute(
        insert(OfferActivation)
        .values(
            member_id=member_id, offer_id=offer_id, activated_at=now, decision_id=decision_id, redemptions=0
        )
        .on_conflict_do_nothing()
        .returning(OfferActivation.member_id)
    )
    if inserted.first() is None:  # a concurrent clip of the same offer won: answer with it
        won = await uow.session.get(OfferActivation, (member_id, offer_id), populate_existing=True)
        assert won is not None
        return _view(offer, won)
    await record(
        uow,
        EventDraft(
            member_id=member_id,
            kind=InteractionKind.OFFER_ACTIVATED,
            occurred_at=now,
            channel=Channel.APP,
            subject_type=SubjectType.OFFER,
            subject_ref=str(offer_id),
            properties={"decision_id": str(decision_id)} if decision_id else {},
        ),
        now,
    )
    return Activation(offer_id=offer_id, activated_at=now, uses_left=offer.per_member_limit)


async def _showing_decision(
    uow: UnitOfWork, member_id: uuid.UUID, offer_id: uuid.UUID, now: datetime
) -> uuid.UUID | None:
    """The newest decision that showed this offer to this member (None: they found it another way)."""
    found: uuid.UUID | None = await uow.session.scalar(
        select(OfferDecisionItem.decision_id)
        .where(
            OfferDecisionItem.member_id == member_id,
            OfferDecisionItem.offer_id == offer_id,
            OfferDecisionItem.decided_at <= now,
        )
        .order_by(OfferDecisionItem.decided_at.desc())
        .limit(1)
    )
    return found


def _view(offer: Offer, activation: OfferActivation) -> Activation:
    return Activation(
        offer_id=offer.id,
        activated_at=activation.activated_at,
        uses_left=max(0, offer.per_member_limit - activation.redemptions),
    )
