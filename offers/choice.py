"""What the serving policy would choose now, for the console: each open offer's probability of the first
slot of the app's list, averaged over the members it would be choosing for.

The contexts are those of recently active members (their traits, their zone's time of day, no store:
the app's list), each with the offers that member may be shown (audience, limits, clips), scored by the
same code that draws the app's list (`offers.selection`, `Scorer.probabilities`). Nothing is drawn,
logged or written.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

import msgspec
import numpy as np
from sqlalchemy import select

from accounts.overview import recently_active_members
from domain.time_zones import checked_time_zone
from infra.db import UnitOfWork
from offers.errors import InvalidMemberCount
from offers.program import OfferProgram
from offers.rules.context import member_context
from offers.rules.features import context_vector
from offers.selection import OpenOffers, candidates_of, choosable, uses_of_members
from offers.tables import Offer, OfferActivation
from offers.versions import ServingPolicy
from timeline.overview import newcomer_traits
from timeline.service import traits_of_members
from timeline.traits import MemberTraits

FIRST_SLOT = 1
MAX_MEMBERS = 1_000


class OfferProbability(msgspec.Struct, frozen=True):
    offer_id: uuid.UUID
    name: str
    title: str
    mean_probability: float  # of the first slot, averaged over the contexts (0 where not eligible)
    top_share: float  # share of the contexts in which it is the most probable first offer
    eligible_share: float  # share of the contexts in which it could be chosen at all


class ChoiceProbabilities(msgspec.Struct, frozen=True):
    policy_version: int
    as_of: datetime
    contexts: int  # member contexts averaged over (those with at least one offer to choose)
    newcomer: bool  # nobody was active lately: the context is a member who signs up now
    offers: list[OfferProbability]  # every open offer, most probable first; the means sum to 1


async def choice_probabilities(
    uow: UnitOfWork,
    serving: ServingPolicy,
    catalogue: OpenOffers,
    program: OfferProgram,
    time_zone: str,
    now: datetime,
    members: int = 200,
) -> ChoiceProbabilities:
    """Each open offer's first-slot probability under the serving policy, averaged over up to `members`
    recently active members; with nobody active, over the context of a member signing up now in
    `time_zone` (the program's). Read-only."""
    if not 1 <= members <= MAX_MEMBERS:
        raise InvalidMemberCount(f"members must be between 1 and {MAX_MEMBERS}")
    checked_time_zone(time_zone)
    offers = await catalogue.now_open(uow, now)
    version, scorer = await serving.current(uow)
    if not offers:
        return ChoiceProbabilities(policy_version=version, as_of=now, contexts=0, newcomer=False, offers=[])
    contexts = await _contexts(uow, members, time_zone, now)
    newcomer = len(contexts) == 1 and contexts[0][0] is None
    probability: dict[uuid.UUID, float] = defaultdict(float)
    top: dict[uuid.UUID, int] = defaultdict(int)
    eligible_in: dict[uuid.UUID, int] = defaultdict(int)
    counted = 0
    for _, zone, traits, uses in contexts:
        eligible = choosable(offers, uses, traits, None, now, program)
        if not eligible:
            continue
        context = context_vector(member_context(traits, zone, None, now))
        first = scorer.probabilities(context, candidates_of(eligible, traits), FIRST_SLOT)
        counted += 1
        for offer, offer_probability in zip(eligible, first, strict=True):
            probability[offer.id] += float(offer_probability)
            eligible_in[offer.id] += 1
        top[eligible[int(np.argmax(first))].id] += 1
    names = await _names(uow, [offer.id for offer in offers])
    share = 1 / counted if counted else 0.0
    ranked = [
        OfferProbability(
            offer_id=offer.id,
            name=names.get(offer.id, ""),
            title=offer.card.title,
            mean_probability=probability[offer.id] * share,
            top_share=top[offer.id] * share,
            eligible_share=eligible_in[offer.id] * share,
        )
        for offer in offers
    ]
    ranked.sort(key=lambda offer: (-offer.mean_probability, str(offer.offer_id)))
    return ChoiceProbabilities(
        policy_version=version, as_of=now, contexts=counted, newcomer=newcomer, offers=ranked
    )


Context = tuple[uuid.UUID | None, str, MemberTraits, dict[uuid.UUID, OfferActivation]]


async def _contexts(uow: UnitOfWork, members: int, time_zone: str, now: datetime) -> list[Context]:
    """(member, zone, traits, clips) of the recently active members, or of one member signing up now."""
    zones = await recently_active_members(uow, now, members)
    if not zones:
        return [(None, time_zone, await newcomer_traits(uow, time_zone, now), {})]
    traits = await traits_of_members(uow, zones, now)
    uses = await uses_of_members(uow, list(zones))
    return [
        (member_id, zone, traits[member_id], uses.get(member_id, {})) for member_id, zone in zones.items()
    ]


async def _names(uow: UnitOfWork, offer_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await uow.session.execute(select(Offer.id, Offer.name).where(Offer.id.in_(offer_ids)))
    return {offer_id: name for offer_id, name in rows}
