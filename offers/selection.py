"""The app's offer list: the eligible offers, chosen by the serving policy, logged as a decision.

The decision (its context, candidates, each chosen offer's slot and probability, the policy version) and
its `offer_decided` timeline event are written in the request's transaction, so a list the member saw is
always in the log, and a failed request leaves neither. A member refreshing the app gets the same list
back without a write: always within `min_decision_seconds`, and within `reuse_list_minutes` while the
store, the policy version and the list's offers are unchanged. So one member writes at most one decision
a minute, whatever they send.
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
from infra.locks import lock_until_commit
from offers.catalogue import facts_of, terms_of
from offers.errors import UnknownStore
from offers.program import OfferProgram
from offers.rules.context import candidate, member_context, why
from offers.rules.eligibility import MemberUse, OfferFacts, ineligible
from offers.rules.features import Candidate, Context, context_vector
from offers.rules.policy import Pick, draw_slate
from offers.rules.terms import OfferState, Terms
from offers.schemas import ChosenOffer, ClippedOffer, OfferCard, OfferList
from offers.tables import Offer, OfferActivation, OfferDecision, OfferDecisionItem
from offers.versions import ServingPolicy
from stores.service import active_store_ids
from timeline.recording import record
from timeline.rules import EventDraft
from timeline.service import member_traits
from timeline.traits import MemberTraits


def _card(offer: Offer, terms: Terms) -> OfferCard:
    return OfferCard(
        id=offer.id,
        title=offer.title,
        body=offer.body,
        image_url=offer.image_url,
        terms=terms,
        valid_until=offer.valid_until,
        store_ids=list(offer.store_ids),
    )


class OpenOffer(msgspec.Struct, frozen=True):
    """An active offer within its dates, parsed once per change (its budget counters read every time)."""

    id: uuid.UUID
    updated_at: datetime
    terms: Terms
    facts: OfferFacts
    card: OfferCard
    cost_points: int
    per_member_limit: int


class OpenOffers:
    """The open offers of the catalogue, kept parsed in the process.

    Each request reads only the open offers' ids, change times and budget counters (no JSON); an offer
    is loaded and parsed again only when its `updated_at` moved, so a console change is seen at once.
    """

    def __init__(self) -> None:
        self._parsed: dict[uuid.UUID, OpenOffer] = {}

    async def now_open(self, uow: UnitOfWork, now: datetime) -> list[OpenOffer]:
        rows = list(
            await uow.session.execute(
                select(Offer.id, Offer.updated_at, Offer.redemptions_used, Offer.points_used)
                .where(Offer.state == OfferState.ACTIVE, Offer.starts_at <= now, Offer.ends_at > now)
                .order_by(Offer.id)
            )
        )
        stale = [offer_id for offer_id, updated_at, _, _ in rows if self._stale(offer_id, updated_at)]
        if stale:
            for offer in (await uow.session.execute(select(Offer).where(Offer.id.in_(stale)))).scalars():
                self._parsed[offer.id] = _parsed(offer)
        self._parsed = {row[0]: self._parsed[row[0]] for row in rows if row[0] in self._parsed}
        return [
            msgspec.structs.replace(
                self._parsed[offer_id],
                facts=msgspec.structs.replace(
                    self._parsed[offer_id].facts, redemptions_used=redemptions, points_used=points
                ),
            )
            for offer_id, _, redemptions, points in rows
            if offer_id in self._parsed
        ]

    def _stale(self, offer_id: uuid.UUID, updated_at: datetime) -> bool:
        known = self._parsed.get(offer_id)
        return known is None or known.updated_at != updated_at


def _parsed(offer: Offer) -> OpenOffer:
    terms = terms_of(offer)
    return OpenOffer(
        id=offer.id,
        updated_at=offer.updated_at,
        terms=terms,
        facts=facts_of(offer, terms),
        card=_card(offer, terms),
        cost_points=offer.cost_points,
        per_member_limit=offer.per_member_limit,
    )


async def member_uses(uow: UnitOfWork, member_id: uuid.UUID) -> dict[uuid.UUID, OfferActivation]:
    return (await uses_of_members(uow, [member_id])).get(member_id, {})


async def uses_of_members(
    uow: UnitOfWork, member_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[uuid.UUID, OfferActivation]]:
    """Each member's clips (by offer), for many members at once."""
    rows = await uow.session.execute(select(OfferActivation).where(OfferActivation.member_id.in_(member_ids)))
    uses: dict[uuid.UUID, dict[uuid.UUID, OfferActivation]] = {}
    for activation in rows.scalars():
        uses.setdefault(activation.member_id, {})[activation.offer_id] = activation
    return uses


def use_of(activation: OfferActivation | None) -> MemberUse:
    return (
        MemberUse() if activation is None else MemberUse(activated=True, redemptions=activation.redemptions)
    )


async def traits_now(uow: UnitOfWork, member_id: uuid.UUID, now: datetime) -> tuple[str, MemberTraits]:
    zone = (await time_zones(uow, [member_id]))[member_id]
    return zone, (await member_traits(uow, member_id, zone, now)).traits


def choosable(
    offers: list[OpenOffer],
    uses: dict[uuid.UUID, OfferActivation],
    traits: MemberTraits,
    store_id: uuid.UUID | None,
    now: datetime,
    program: OfferProgram,
) -> list[OpenOffer]:
    """The open offers the policy chooses among for this member now: eligible and not clipped yet."""
    return [
        offer
        for offer in offers
        if ineligible(offer.facts, use_of(uses.get(offer.id)), traits, store_id, now, clipped_counts=True)
        is None
    ][: program.selection.max_candidates]


def candidates_of(offers: list[OpenOffer], traits: MemberTraits) -> list[Candidate]:
    """The offers as the policy scores them for this member (their features, in the same order)."""
    return [candidate(offer.id, offer.terms, offer.cost_points, traits) for offer in offers]


async def offers_for_member(
    uow: UnitOfWork,
    serving: ServingPolicy,
    catalogue: OpenOffers,
    program: OfferProgram,
    member_id: uuid.UUID,
    store_id: uuid.UUID | None,
    rng: np.random.Generator,
    now: datetime,
) -> OfferList:
    if store_id is not None and not await active_store_ids(uow, {store_id}):
        raise UnknownStore(store_ids=[str(store_id)])
    # One list at a time per member, so concurrent refreshes find the list the first one wrote.
    await lock_until_commit(uow, "offers.decide", member_id)
    zone, traits = await traits_now(uow, member_id, now)
    offers = await catalogue.now_open(uow, now)
    uses = await member_uses(uow, member_id)
    eligible = choosable(offers, uses, traits, store_id, now, program)
    clipped = [
        ClippedOffer(
            offer.card, uses[offer.id].activated_at, offer.per_member_limit - uses[offer.id].redemptions
        )
        for offer in offers
        if offer.id in uses
        and ineligible(offer.facts, use_of(uses[offer.id]), traits, store_id, now, clipped_counts=False)
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
    candidates = candidates_of(eligible, traits)
    picks = draw_slate(scorer, context_vector(context), candidates, program.slots, rng)
    lines = [
        why(
            by_id[uuid.UUID(pick.candidate.key)].terms,
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
        ChosenOffer(by_id[uuid.UUID(pick.candidate.key)].card, pick.position, line)
        for pick, line in zip(picks, lines, strict=True)
    ]
    return OfferList(decision_id, version, chosen, clipped)


async def _recent_list(
    uow: UnitOfWork,
    program: OfferProgram,
    member_id: uuid.UUID,
    store_id: uuid.UUID | None,
    version: int,
    eligible: dict[uuid.UUID, OpenOffer],
    now: datetime,
) -> tuple[uuid.UUID, list[ChosenOffer]] | None:
    """The member's last list again, without writing: within `min_decision_seconds` whatever changed
    (its offers still open), and within `reuse_list_minutes` when nothing did (same store, same policy,
    all its offers still open). None: a new decision is due."""
    last = (
        await uow.session.execute(
            select(OfferDecision)
            .where(OfferDecision.member_id == member_id)
            .order_by(OfferDecision.decided_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if last is None or last.decided_at > now:
        return None
    items = list(
        (
            await uow.session.execute(
                select(OfferDecisionItem)
                .where(OfferDecisionItem.decision_id == last.id)
                .order_by(OfferDecisionItem.position)
            )
        ).scalars()
    )
    chosen = [
        ChosenOffer(eligible[item.offer_id].card, item.position, item.why)
        for item in items
        if item.offer_id in eligible
    ]
    if last.decided_at > now - timedelta(seconds=program.min_decision_seconds):
        return last.id, chosen
    unchanged = last.store_id == store_id and last.policy_version == version
    fresh = last.decided_at > now - timedelta(minutes=program.reuse_list_minutes)
    if unchanged and fresh and len(chosen) == len(items):
        return last.id, chosen
    return None


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
