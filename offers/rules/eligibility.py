"""Whether a member may be shown, clip or use an offer now: one function, one reason when not.

The order of the checks is the order of the reasons a marketer reads in a report: the offer itself
(state, dates, budget), then where (store), then who (audience, limits, an existing clip).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

import msgspec

from offers.rules.terms import OfferState
from timeline.segments import TraitSegment, in_segment
from timeline.traits import MemberTraits


class Ineligible(StrEnum):
    NOT_ACTIVE = "not_active"  # draft, paused or ended
    NOT_STARTED = "not_started"
    EXPIRED = "expired"
    BUDGET_EXHAUSTED = "budget_exhausted"
    OTHER_STORE = "other_store"
    NOT_IN_AUDIENCE = "not_in_audience"
    LIMIT_REACHED = "limit_reached"  # the member used it as often as allowed
    ALREADY_ACTIVATED = "already_activated"  # clipped: it is in the member's list of clipped offers


class OfferFacts(msgspec.Struct, frozen=True, kw_only=True):
    state: OfferState
    starts_at: datetime
    ends_at: datetime
    store_ids: frozenset[uuid.UUID]  # empty: every store
    audience: TraitSegment
    per_member_limit: int
    budget_redemptions: int | None
    budget_points: int | None
    redemptions_used: int
    points_used: int
    least_points_per_use: int = 1  # a fixed bonus's points: less budget than this pays for no use


class MemberUse(msgspec.Struct, frozen=True, kw_only=True):
    """What one member has done with one offer."""

    activated: bool = False
    redemptions: int = 0


def budget_left(offer: OfferFacts) -> bool:
    if offer.budget_redemptions is not None and offer.redemptions_used >= offer.budget_redemptions:
        return False
    return (
        offer.budget_points is None or offer.points_used + offer.least_points_per_use <= offer.budget_points
    )


def ineligible(
    offer: OfferFacts,
    use: MemberUse,
    traits: MemberTraits | None,
    store_id: uuid.UUID | None,
    now: datetime,
    *,
    clipped_counts: bool,
) -> Ineligible | None:
    """Why the member may not have the offer now, or None when they may.

    `traits` None: the audience is not asked again (at the register, of an offer the member clipped while
    in its audience). `store_id` None: the member is not at a store (the app's list), so store-bound
    offers stay open to them. `clipped_counts`: an existing clip makes the offer ineligible (choosing
    what to show) or not (using a clipped offer at the register).
    """
    if offer.state is not OfferState.ACTIVE:
        return Ineligible.NOT_ACTIVE
    if now < offer.starts_at:
        return Ineligible.NOT_STARTED
    if now >= offer.ends_at:
        return Ineligible.EXPIRED
    if not budget_left(offer):
        return Ineligible.BUDGET_EXHAUSTED
    if store_id is not None and offer.store_ids and store_id not in offer.store_ids:
        return Ineligible.OTHER_STORE
    if traits is not None and not in_segment(traits, offer.audience):
        return Ineligible.NOT_IN_AUDIENCE
    if use.redemptions >= offer.per_member_limit:
        return Ineligible.LIMIT_REACHED
    if clipped_counts and use.activated:
        return Ineligible.ALREADY_ACTIVATED
    return None
