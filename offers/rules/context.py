"""What the policy knows of a member when it chooses: their traits, the local time, the store they are at;
and the line that tells them why an offer was chosen."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from offers.rules.features import Candidate, Context
from offers.rules.policy import COST_SCALE_POINTS
from offers.rules.terms import BonusPoints, Multiplier, Terms
from timeline.traits import MemberTraits

NEW_OFFER_SEEN = 50  # an offer shown fewer times than this is new to the policy
LIKED_CATEGORY_SHARE = 0.25


def day_part(local_hour: int) -> str:
    if 5 <= local_hour < 11:
        return "morning"
    if 11 <= local_hour < 17:
        return "afternoon"
    if 17 <= local_hour < 22:
        return "evening"
    return "night"


def member_context(
    traits: MemberTraits, time_zone: str, store_id: uuid.UUID | None, now: datetime
) -> Context:
    at_store = (
        "none" if store_id is None else ("favourite" if store_id == traits.favourite_store_id else "other")
    )
    return Context(
        tokens=(
            f"lifecycle={traits.lifecycle_stage.value}",
            f"recency={traits.rfm.recency}",
            f"time={day_part(now.astimezone(ZoneInfo(time_zone)).hour)}",
            f"store={at_store}",
        ),
        numbers=(
            ("health", traits.health_score / 100),
            ("frequency", traits.rfm.frequency / 5),
            ("monetary", traits.rfm.monetary / 5),
        ),
    )


def offer_category(terms: Terms) -> str | None:
    return terms.category if isinstance(terms, Multiplier | BonusPoints) else None


def category_share(traits: MemberTraits, category: str | None) -> float:
    """The share of the member's purchases that held `category` (0 when the offer has no category)."""
    total = sum(count for _, count in traits.categories)
    if category is None or not total:
        return 0.0
    return dict(traits.categories).get(category, 0) / total


def candidate(offer_id: uuid.UUID, terms: Terms, cost_points: int, traits: MemberTraits) -> Candidate:
    return Candidate(
        key=str(offer_id),
        affinity=category_share(traits, offer_category(terms)),
        cost=cost_points / COST_SCALE_POINTS,
    )


def why(terms: Terms, chosen: Candidate, times_seen: int, explored: bool) -> str:
    """One line for the member, from what actually moved the choice."""
    category = offer_category(terms)
    if category is not None and chosen.affinity >= LIKED_CATEGORY_SHARE:
        return f"Because you often buy {category}"
    if times_seen < NEW_OFFER_SEEN:
        return "New this season"
    if explored:
        return "Something different you might like"
    return "Popular with members like you"
