"""The offer catalogue in the console: draft, change, activate, pause, end.

States: draft -> active <-> paused -> ended (also draft -> ended). Terms, dates, stores and audience change
only in a draft: members may hold a clip of an active or paused offer, and what they clipped must stay
what they get. The creative, the per-member limit and the budgets may change while paused.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from msgspec import UNSET
from sqlalchemy import func, select

from infra.db import UnitOfWork
from infra.locks import lock_until_commit
from infra.pages import fetch_page
from offers.errors import (
    InvalidOffer,
    OfferNotEditable,
    OfferNotFound,
    OfferStateConflict,
    TooManyActiveOffers,
    UnknownStore,
)
from offers.program import OfferProgram
from offers.rules.eligibility import OfferFacts
from offers.rules.terms import (
    AmountOff,
    OfferState,
    Terms,
    can_move,
    expected_cost_points,
    least_points_per_use,
    validity,
)
from offers.schemas import OfferChanges, OfferDraft, OfferPage, OfferView
from offers.tables import Offer
from stores.service import active_store_ids
from timeline.segments import TraitSegment

_DRAFT_ONLY = ("terms", "valid_from", "valid_until", "store_ids", "audience")


class CatalogueRules(msgspec.Struct, frozen=True):
    """What the catalogue needs from the loyalty program and the offers program."""

    time_zone: str
    point_value_minor: int
    offers: OfferProgram


def terms_of(offer: Offer) -> Terms:
    terms: Terms = msgspec.convert(offer.terms, Terms)
    return terms


def facts_of(offer: Offer, terms: Terms) -> OfferFacts:
    """`terms`: the offer's, parsed once by the caller (`terms_of`)."""
    return OfferFacts(
        state=offer.state,
        starts_at=offer.starts_at,
        ends_at=offer.ends_at,
        store_ids=frozenset(offer.store_ids),
        audience=msgspec.convert(offer.audience, TraitSegment),
        per_member_limit=offer.per_member_limit,
        budget_redemptions=offer.budget_redemptions,
        budget_points=offer.budget_points,
        redemptions_used=offer.redemptions_used,
        points_used=offer.points_used,
        least_points_per_use=least_points_per_use(terms),
    )


def view_of(offer: Offer) -> OfferView:
    return OfferView(
        id=offer.id,
        name=offer.name,
        state=offer.state,
        terms=terms_of(offer),
        title=offer.title,
        body=offer.body,
        image_url=offer.image_url,
        valid_from=offer.valid_from,
        valid_until=offer.valid_until,
        starts_at=offer.starts_at,
        ends_at=offer.ends_at,
        store_ids=list(offer.store_ids),
        audience=msgspec.convert(offer.audience, TraitSegment),
        per_member_limit=offer.per_member_limit,
        budget_redemptions=offer.budget_redemptions,
        budget_points=offer.budget_points,
        redemptions_used=offer.redemptions_used,
        points_used=offer.points_used,
        cost_points=offer.cost_points,
        created_at=offer.created_at,
        updated_at=offer.updated_at,
    )


async def _check_stores(uow: UnitOfWork, store_ids: list[uuid.UUID], audience: TraitSegment) -> None:
    named = set(store_ids) | audience.store_ids()
    missing = named - await active_store_ids(uow, named)
    if missing:
        raise UnknownStore(store_ids=sorted(str(store_id) for store_id in missing))


def _apply_rules(offer: Offer, rules: CatalogueRules) -> None:
    """Derived columns and the checks that span fields."""
    terms = terms_of(offer)
    if isinstance(terms, AmountOff) and offer.budget_points is not None:
        raise InvalidOffer("a coupon earns no points: budget it in redemptions (budget_redemptions)")
    try:
        offer.starts_at, offer.ends_at = validity(offer.valid_from, offer.valid_until, rules.time_zone)
    except ValueError as error:
        raise InvalidOffer(str(error)) from error
    if offer.budget_redemptions is not None and offer.budget_redemptions < offer.redemptions_used:
        raise InvalidOffer(f"budget_redemptions is below the {offer.redemptions_used} uses already made")
    if offer.budget_points is not None and offer.budget_points < offer.points_used:
        raise InvalidOffer(f"budget_points is below the {offer.points_used} points already granted")
    offer.cost_points = expected_cost_points(
        terms, rules.offers.typical_basket_points, rules.point_value_minor
    )


async def create_offer(uow: UnitOfWork, rules: CatalogueRules, draft: OfferDraft, now: datetime) -> OfferView:
    await _check_stores(uow, draft.store_ids, draft.audience)
    offer = Offer(
        name=draft.name,
        state=OfferState.DRAFT,
        terms=msgspec.to_builtins(draft.terms),
        title=draft.title,
        body=draft.body,
        image_url=draft.image_url,
        valid_from=draft.valid_from,
        valid_until=draft.valid_until,
        store_ids=sorted(set(draft.store_ids)),
        audience=msgspec.to_builtins(draft.audience),
        per_member_limit=draft.per_member_limit,
        budget_redemptions=draft.budget_redemptions,
        budget_points=draft.budget_points,
        redemptions_used=0,
        points_used=0,
        created_at=now,
        updated_at=now,
    )
    _apply_rules(offer, rules)
    uow.session.add(offer)
    await uow.session.flush()
    return view_of(offer)


async def locked_offer(uow: UnitOfWork, offer_id: uuid.UUID) -> Offer:
    offer = (
        await uow.session.execute(select(Offer).where(Offer.id == offer_id).with_for_update())
    ).scalar_one_or_none()
    if offer is None:
        raise OfferNotFound(offer_id=str(offer_id))
    return offer


async def change_offer(
    uow: UnitOfWork, rules: CatalogueRules, offer_id: uuid.UUID, changes: OfferChanges, now: datetime
) -> OfferView:
    offer = await locked_offer(uow, offer_id)
    given = {
        field: value for field in changes.__struct_fields__ if (value := getattr(changes, field)) is not UNSET
    }
    if offer.state in (OfferState.ENDED, OfferState.ACTIVE) and given:
        raise OfferNotEditable(state=offer.state.value)
    if offer.state is not OfferState.DRAFT and set(given) & set(_DRAFT_ONLY):
        raise OfferNotEditable(fields=sorted(set(given) & set(_DRAFT_ONLY)), state=offer.state.value)
    if "store_ids" in given or "audience" in given:
        await _check_stores(
            uow,
            given.get("store_ids", offer.store_ids),
            given.get("audience", msgspec.convert(offer.audience, TraitSegment)),
        )
    for field, value in given.items():
        if field in ("terms", "audience"):
            value = msgspec.to_builtins(value)
        elif field == "store_ids":
            value = sorted(set(value))
        setattr(offer, field, value)
    _apply_rules(offer, rules)
    offer.updated_at = now
    return view_of(offer)


async def change_state(
    uow: UnitOfWork, rules: CatalogueRules, offer_id: uuid.UUID, to: OfferState, now: datetime
) -> OfferView:
    # One activation at a time, so concurrent activations cannot pass the active-offer ceiling together.
    if to is OfferState.ACTIVE:
        await lock_until_commit(uow, "offers.activate", "catalogue")
    offer = await locked_offer(uow, offer_id)
    if offer.state is to:
        return view_of(offer)
    if not can_move(offer.state, to):
        raise OfferStateConflict(f"an offer cannot go from {offer.state.value} to {to.value}")
    if to is OfferState.ACTIVE:
        if offer.ends_at <= now:
            raise OfferStateConflict("the offer's validity is over")
        active = await uow.session.scalar(select(func.count()).where(Offer.state == OfferState.ACTIVE))
        if (active or 0) >= rules.offers.max_active_offers:
            raise TooManyActiveOffers(max_active_offers=rules.offers.max_active_offers)
    offer.state = to
    offer.updated_at = now
    return view_of(offer)


async def get_offer(uow: UnitOfWork, offer_id: uuid.UUID) -> OfferView:
    offer = await uow.session.get(Offer, offer_id)
    if offer is None:
        raise OfferNotFound(offer_id=str(offer_id))
    return view_of(offer)


async def list_offers(uow: UnitOfWork, state: OfferState | None, cursor: str | None, limit: int) -> OfferPage:
    query = select(Offer)
    if state is not None:
        query = query.where(Offer.state == state)
    rows, next_cursor = await fetch_page(uow, query, Offer.id, cursor, limit, newest_first=True)
    return OfferPage(items=[view_of(offer) for offer in rows], next_cursor=next_cursor)
