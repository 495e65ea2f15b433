"""What an offer promises, the states it moves through, and when it is valid.

Kinds (`kind` tags the terms):
- `multiplier`: the basket (or one category) earns `percent` of the base rate; the extra part is the offer's.
- `bonus_points`: fixed points when the basket holds the category or SKU.
- `visit_bonus`: fixed points for a purchase at an eligible store (from `min_spend_minor`).
- `amount_off`: a coupon the register applies as a discount; the sale names it (`offer_ids`).

Validity is given in local dates of the program's zone (`valid_from` .. `valid_until`, both inclusive)
and kept as the UTC instants `[start of valid_from, start of the day after valid_until)`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

import msgspec

from domain.errors import RuleViolation

PERCENT_BASE = 100  # integer percent, as in the earning rules: 100 = x1, 150 = x1.5
Points = Annotated[int, msgspec.Meta(ge=1, le=100_000)]
MinorAmount = Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class OfferState(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


NEXT_STATES = {
    OfferState.DRAFT: frozenset({OfferState.ACTIVE, OfferState.ENDED}),
    OfferState.ACTIVE: frozenset({OfferState.PAUSED, OfferState.ENDED}),
    OfferState.PAUSED: frozenset({OfferState.ACTIVE, OfferState.ENDED}),
    OfferState.ENDED: frozenset[OfferState](),
}


def can_move(current: OfferState, to: OfferState) -> bool:
    return to in NEXT_STATES[current]


class _Terms(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    pass


class Multiplier(_Terms, frozen=True, tag="multiplier"):
    percent: Annotated[int, msgspec.Meta(ge=PERCENT_BASE + 1, le=1_000)]
    category: Label | None = None  # None: the whole basket
    min_spend_minor: MinorAmount = 0


class BonusPoints(_Terms, frozen=True, tag="bonus_points"):
    points: Points
    category: Label | None = None
    sku: Label | None = None

    def __post_init__(self) -> None:
        if (self.category is None) == (self.sku is None):
            raise RuleViolation("bonus_points needs exactly one of category and sku")


class VisitBonus(_Terms, frozen=True, tag="visit_bonus"):
    points: Points
    min_spend_minor: MinorAmount = 0


class AmountOff(_Terms, frozen=True, tag="amount_off"):
    amount_off_minor: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]
    min_spend_minor: MinorAmount = 0

    def __post_init__(self) -> None:
        if self.min_spend_minor and self.min_spend_minor < self.amount_off_minor:
            raise RuleViolation("amount_off: min_spend_minor must be at least amount_off_minor")


Terms = Multiplier | BonusPoints | VisitBonus | AmountOff
POINTS_KINDS = (Multiplier, BonusPoints, VisitBonus)


def earns_points(terms: Terms) -> bool:
    return isinstance(terms, POINTS_KINDS)


def expected_cost_points(terms: Terms, typical_basket_points: int, point_value_minor: int) -> int:
    """What using the offer is expected to cost, in points: the business weight in the offer's score.

    A multiplier costs its extra share of a typical basket; a coupon costs its discount in points' money.
    """
    if isinstance(terms, Multiplier):
        return typical_basket_points * (terms.percent - PERCENT_BASE) // PERCENT_BASE
    if isinstance(terms, BonusPoints | VisitBonus):
        return terms.points
    return -(-terms.amount_off_minor // point_value_minor)


def least_points_per_use(terms: Terms) -> int:
    """The fewest points one use grants: a fixed bonus grants its points, a multiplier at least one."""
    return terms.points if isinstance(terms, BonusPoints | VisitBonus) else 1


def validity(valid_from: date, valid_until: date, time_zone: str) -> tuple[datetime, datetime]:
    """The UTC instants `[starts_at, ends_at)` of local dates `valid_from`..`valid_until` (inclusive)."""
    if valid_until < valid_from:
        raise RuleViolation("valid_until must not be before valid_from")
    zone = ZoneInfo(time_zone)
    starts = datetime.combine(valid_from, time(), zone).astimezone(UTC)
    ends = datetime.combine(valid_until + timedelta(days=1), time(), zone).astimezone(UTC)
    return starts, ends
