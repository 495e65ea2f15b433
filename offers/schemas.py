"""Request and response bodies of the offers endpoints (console catalogue and performance, app list)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

from domain.errors import RuleViolation
from domain.rates import Rate
from domain.text import NOT_BLANK, URL_CHARACTER_BUT_AT
from domain.times import check_dates
from offers.rules.terms import OfferState, Terms
from timeline.segments import TraitSegment

OfferName = Annotated[str, msgspec.Meta(min_length=1, max_length=120, pattern=NOT_BLANK)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=80, pattern=NOT_BLANK)]
Body = Annotated[str, msgspec.Meta(min_length=1, max_length=400, pattern=NOT_BLANK)]
# Shown by the app, never fetched by the server: https only, no spaces, no credentials in the URL.
ImageUrl = Annotated[
    str,
    msgspec.Meta(
        pattern=rf"^https://[A-Za-z0-9.-]+(:[0-9]{{1,5}})?(/{URL_CHARACTER_BUT_AT}*)?$",
        max_length=500,
        examples=["https://cdn.example.com/offers/linen.jpg"],
    ),
]
StoreIds = Annotated[list[uuid.UUID], msgspec.Meta(max_length=200)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=1_000)]
Budget = Annotated[int, msgspec.Meta(ge=1, le=10**12)]


class OfferDraft(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A new offer, saved as a draft. Dates are local dates in the program's time zone, both included."""

    name: OfferName
    terms: Terms
    title: Title
    body: Body
    valid_from: date
    valid_until: date
    image_url: ImageUrl | None = None
    store_ids: StoreIds = msgspec.field(default_factory=list)  # empty: every store
    audience: TraitSegment = msgspec.field(default_factory=TraitSegment)
    per_member_limit: Limit = 1
    budget_redemptions: Budget | None = None
    budget_points: Budget | None = None

    def __post_init__(self) -> None:
        check_dates(self, "valid_from", "valid_until")
        if self.valid_until < self.valid_from:
            raise RuleViolation("valid_until must not be before valid_from")


class OfferChanges(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Fields left out stay. Terms, dates, stores and audience change only in a draft; the creative,
    the per-member limit and the budgets also while paused. `image_url` or a budget sent as null is
    removed."""

    name: OfferName | UnsetType = UNSET
    terms: Terms | UnsetType = UNSET
    title: Title | UnsetType = UNSET
    body: Body | UnsetType = UNSET
    valid_from: date | UnsetType = UNSET
    valid_until: date | UnsetType = UNSET
    image_url: ImageUrl | UnsetType | None = UNSET
    store_ids: StoreIds | UnsetType = UNSET
    audience: TraitSegment | UnsetType = UNSET
    per_member_limit: Limit | UnsetType = UNSET
    budget_redemptions: Budget | UnsetType | None = UNSET
    budget_points: Budget | UnsetType | None = UNSET

    def __post_init__(self) -> None:
        check_dates(self, *(f for f in ("valid_from", "valid_until") if isinstance(getattr(self, f), date)))


class StateChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    state: OfferState


class OfferView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    name: str
    state: OfferState
    terms: Terms
    title: str
    body: str
    image_url: str | None
    valid_from: date
    valid_until: date
    starts_at: datetime
    ends_at: datetime
    store_ids: list[uuid.UUID]
    audience: TraitSegment
    per_member_limit: int
    budget_redemptions: int | None
    budget_points: int | None
    redemptions_used: int
    points_used: int
    cost_points: int
    created_at: datetime
    updated_at: datetime


class OfferPage(msgspec.Struct, frozen=True):
    items: list[OfferView]
    next_cursor: str | None


class OfferCard(msgspec.Struct, frozen=True):
    """An offer as the app shows it."""

    id: uuid.UUID
    title: str
    body: str
    image_url: str | None
    terms: Terms
    valid_until: date
    store_ids: list[uuid.UUID]


class ChosenOffer(msgspec.Struct, frozen=True):
    offer: OfferCard
    position: int
    why: str  # one line for the member: why this offer


class ClippedOffer(msgspec.Struct, frozen=True):
    offer: OfferCard
    activated_at: datetime
    uses_left: int


class OfferList(msgspec.Struct, frozen=True):
    """`decision_id` goes with the app's `offer_viewed` events (`properties.decision_id`)."""

    decision_id: uuid.UUID | None
    policy_version: int
    offers: list[ChosenOffer]
    activated: list[ClippedOffer]


class Activation(msgspec.Struct, frozen=True):
    offer_id: uuid.UUID
    activated_at: datetime
    uses_left: int


class OfferPerformance(msgspec.Struct, frozen=True):
    """Per offer: what the policy did with it and what members did; `*_per_decision` are rates over the
    decisions that showed it, with 95 % Wilson intervals, beside the same rate estimated for the uniform
    exploration baseline (inverse-propensity weighted)."""

    offer_id: uuid.UUID
    name: str
    state: OfferState
    decisions: int
    views: int
    activations: int
    redemptions: int
    uses: int
    points_cost: int
    purchases_after_view: int
    redemption_rate: Rate
    activation_rate: Rate
    uniform_activation_rate: float | None
    uniform_redemption_rate: float | None


class PerformanceReport(msgspec.Struct, frozen=True):
    """`decisions`: offers shown (slots); `activation_rate`: the serving policies' clip rate per offer
    shown, beside `uniform_activation_rate`, the uniform-exploration baseline's, estimated off-policy."""

    policy_version: int
    decisions: int
    activation_rate: Rate
    uniform_activation_rate: float | None
    redemption_rate: Rate
    uniform_redemption_rate: float | None
    offers: list[OfferPerformance]
