"""The app's offer list: the eligible offers, chosen by the serving policy, logged as a decision.

The decision (its context, candidates, each chosen offer's slot and probability, the policy version) and
its `offer_decided` timeline event are written in the request's transaction, so a list the member saw is
always in the log, and a failed request leaves neither. A member refreshing the app within
`reuse_list_minutes` gets the same list back, and nothing is written.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import msgspec
import numpy as np
from sqlalchemy import insert, select

from accounts.members import time_zones
from domain.interactions import Channel, InteractionKind
from infra.db import UnitOfWork
from offers.catalogue import facts_of, terms_of
from offers.program import OfferProgram
from offers.rules.context import candidate, member_context, why
from offers.rules.eligibility import MemberUse, ineligible
from offers.rules.features import Candidate, Context, context_vector
from offers.rules.policy import Pick, draw_slate
from offers.rules.terms import OfferState
from offers.schemas import ChosenOffer, ClippedOffer, OfferCard, OfferList
from offers.tables import Offer, OfferActivation, OfferDecision, OfferDecisionItem
from offers.versions import ServingPolicy
from timeline.recording import record
from timeline.rules import EventDraft
from timeline.service import member_traits
from timeline.traits import MemberTraits


def card_of(offer: Offer) -> OfferCard:
    return OfferCard(
        id=offer.id,
        title=offer.title,
        body=offer.body,
        image_url=offer.image_url,
        terms=terms_of(offer),
        valid_until=offer.valid_until,
        store_ids=list(offer.store_ids),
    )


async def open_offers(uow: UnitOfWork, now: datetime) -> list[Offer]:
    """Active offers within their dates, in a stable order."""
    query = select(Offer).where(Offer.state == OfferState.ACTIVE, Offer.starts_at <= now, Offer.ends_at > now)
    return list((await uow.session.execute(query.order_by(Offer.id))).scalars())


async def member_uses(uow: UnitOfWork, member_id: uuid.UUID) -> dict[uuid.UUID, OfferActivation]:
    rows = await uow.session.execute(select(OfferActivation).where(OfferActivation.member_id == member_id))
    return {activation.offer_id: activation for activation in rows.scalars()}


def use_of(activation: OfferActivation | None) -> MemberUse:
    return (
        MemberUse() if activation is None else MemberUse(activated=True, redemptions=activation.redemptions)
    )


async def traits_now(uow: UnitOfWork, member_id: uuid.UUID, now: datetime) -> tuple[str, MemberTraits]:
    zone = (await time_zones(uow, [member_id]))[member_id]
    return zone, (await member_traits(uow, member_id, zone, now)).traits


async def offers_for_member(
    uow: UnitOfWork,
    serving: ServingPolicy,
    program: OfferProgram,
    member_id: uuid.UUID,
    store_id: uuid.UUID | None,
    rng: np.random.Generator,
    now: datetime,
) -> OfferList:
    zone, traits = await traits_now(uow, member_id, now)
    offers = await open_offers(uow, now)
    uses = await member_uses(uow, member_id)
    eligible = [
        offer
        for offer in offers
        if ineligible(facts_of(offer), use_of(uses.get(offer.id)), traits, store_id, now, clipped_counts=True)
        is None
    ][: program.selection.max_candidates]
    clipped = [
        ClippedOffer(
            card_of(offer), uses[offer.id].activated_at, offer.per_member_limit - uses[offer.id].redemptions
        )
        for offer in offers
        if offer.id in uses
        and ineligible(facts_of(offer), use_of(uses[offer.id]), traits, store_id, now, clipped_counts=False)
        is None
    ]
    version, scorer = await serving.current(uow)
    by_id = {offer.id: offer for offer in eligible}
    reused = await _recent_list(uow, program, member_id, store_id, version, by_id, now)
    if reused is not None:
        decision_id, chosen = reused
        return OfferList(decision_id, version, chosen, clipped)
    if not eligible:
        return OfferList(None, version, [], clipped)
    context = member_context(traits, zone, store_id, now)
    candidates = [candidate(offer.id, terms_of(offer), offer.cost_points, traits) for offer in eligible]
    picks = draw_slate(scorer, context_vector(context), candidates, program.slots, rng)
    lines = [
        why(
            terms_of(by_id[uuid.UUID(pick.candidate.key)]),
            pick.candidate,
            scorer.seen.get(pick.candidate.key, 0),
            not pick.greedy,
        )
        for pick in picks
    ]
    decision_id = await _log_decision(
        uow, member_id, store_id, version, context, candidates, picks, lines, now
    )
    chosen = [
        ChosenOffer(card_of(by_id[uuid.UUID(pick.candidate.key)]), pick.position, line)
        for pick, line in zip(picks, lines, strict=True)
    ]
    return OfferList(decision_id, version, chosen, clipped)


async def _recent_list(
    uow: UnitOfWork,
    program: OfferProgram,
    member_id: uuid.UUID,
    store_id: uuid.UUID | None,
    version: int,
    eligible: dict[uuid.UUID, Offer],
    now: datetime,
) -> tuple[uuid.UUID, list[ChosenOffer]] | None:
    """The member's last list, when it is recent, for the same store and policy, and still all open."""
    if not program.reuse_list_minutes:
        return None
    last = (
        await uow.session.execute(
            select(OfferDecision)
            .where(OfferDecision.member_id == member_id)
            .order_by(OfferDecision.decided_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if (
        last is None
        or last.decided_at <= now - timedelta(minutes=program.reuse_list_minutes)
        or last.decided_at > now
        or last.store_id != store_id
        or last.policy_version != version
    ):
        return None
    items = (
        await uow.session.execute(
            select(OfferDecisionItem)
            .where(OfferDecisionItem.decision_id == last.id)
            .order_by(OfferDecisionItem.position)
        )
    ).scalars()
    chosen = []
    for item in items:
        if item.offer_id not in eligible:
            return None
        chosen.append(ChosenOffer(card_of(eligible[item.offer_id]), item.position, item.why))
    return last.id, chosen


async def _log_decision(
    uow: UnitOfWork,
    member_id: uuid.UUID,
    store_id: uuid.UUID | None,
    version: int,
    context: Context,
    candidates: list[Candidate],
    picks: list[Pick],
    lines: list[str],
    now: datetime,
) -> uuid.UUID:
    decision = OfferDecision(
        member_id=member_id,
        decided_at=now,
        policy_version=version,
        store_id=store_id,
        context=msgspec.to_builtins(context),
        candidates=msgspec.to_builtins(candidates),
        learned_at=None,
    )
    uow.session.add(decision)
    await uow.session.flush()
    await uow.session.execute(
        insert(OfferDecisionItem),
        [
            {
                "decision_id": decision.id,
                "position": pick.position,
                "offer_id": uuid.UUID(pick.candidate.key),
                "member_id": member_id,
                "decided_at": now,
                "propensity": pick.propensity,
                "uniform_propensity": 1 / pick.candidates_left,
                "why": line,
            }
            for pick, line in zip(picks, lines, strict=True)
        ],
    )
    await record(
        uow,
        EventDraft(
            member_id=member_id,
            kind=InteractionKind.OFFER_DECIDED,
            occurred_at=now,
            channel=Channel.APP,
            store_id=store_id,
            properties={
                "decision_id": str(decision.id),
                "policy_version": version,
                "offers": [pick.candidate.key for pick in picks],
            },
        ),
        now,
    )
    return decision.id
