"""Request and response bodies of the register (POS) and member points endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from domain.times import normalise_times
from points.rules.earning import AppliedRule
from points.rules.stages import Stage

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
ReceiptId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._:/-]{1,64}$", examples=["R-20261123-0042"])]
Minor = Annotated[int, msgspec.Meta(ge=0, le=10**12)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class SaleLineIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    line_no: Annotated[int, msgspec.Meta(ge=1, le=9999)]
    sku: Label
    category: Label
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    unit_price_minor: Minor
    discount_minor: Minor = 0


class PurchaseRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    receipt_id: ReceiptId
    sold_at: AwareDatetime
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$", examples=["JPY"])]
    total_minor: Minor
    lines: Annotated[list[SaleLineIn], msgspec.Meta(min_length=1, max_length=500)]
    member_code: Annotated[str, msgspec.Meta(min_length=1, max_length=40)] | None = None
    points_to_redeem: Annotated[int, msgspec.Meta(ge=0, le=10**9)] = 0
    # Coupons (amount-off offers) the member clipped and the register took off the lines' prices.
    offer_ids: Annotated[list[uuid.UUID], msgspec.Meta(max_length=10)] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        normalise_times(self, "sold_at")


class MemberAtRegister(msgspec.Struct, frozen=True):
    card_number: str
    display_initial: str
    stage: Stage


class BalancesView(msgspec.Struct, frozen=True):
    available: int
    pending: int
    owed: int
    lifetime_earned: int


class OfferUsed(msgspec.Struct, frozen=True):
    """A clipped offer the sale used: points it added (included in `points_earned`) or a coupon's discount."""

    offer_id: uuid.UUID
    title: str
    points: int
    amount_off_minor: int


class PurchaseResult(msgspec.Struct, frozen=True):
    purchase_id: uuid.UUID
    receipt_id: str
    member: MemberAtRegister | None
    points_redeemed: int
    points_earned: int
    points_repaid: int  # of the points earned, how many paid off what the member owed
    miles_earned: int
    stages_reached: list[Stage]
    award: list[AppliedRule]
    balances: BalancesView | None
    offers_used: list[OfferUsed] = msgspec.field(default_factory=list)


class RefundLineIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    line_no: Annotated[int, msgspec.Meta(ge=1, le=9999)]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100_000)]


class RefundRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Refund part of a sale by its lines (`lines`) or by an amount (`amount_minor`): exactly one of them."""

    refund_receipt_id: ReceiptId
    original_receipt_id: ReceiptId
    refunded_at: AwareDatetime
    lines: Annotated[list[RefundLineIn], msgspec.Meta(min_length=1, max_length=500)] | None = None
    amount_minor: Annotated[int, msgspec.Meta(ge=1, le=10**12)] | None = None

    def __post_init__(self) -> None:
        normalise_times(self, "refunded_at")


class RefundResult(msgspec.Struct, frozen=True):
    refund_id: uuid.UUID
    purchase_id: uuid.UUID
    amount_minor: int
    refunded_total_minor: int
    points_reversed: int
    points_owed: int  # already spent: a negative adjustment repaid from future points
    points_returned: int  # redeemed points given back (they first repay what the member owes)
    miles_reversed: int
    # What the register pays back in money: the amount returned less the part the member had paid
    # with points, which comes back as points instead.
    money_to_return_minor: int
    balances: BalancesView | None


class ResolveRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class ResolvedMember(msgspec.Struct, frozen=True):
    member: MemberAtRegister
    balances: BalancesView


class NextStage(msgspec.Struct, frozen=True):
    stage: Stage
    miles_missing: int


class PointsSummary(msgspec.Struct, frozen=True):
    balances: BalancesView
    next_expiry_points: int
    next_expiry_at: datetime | None
    miles_this_period: int
    period_started_at: datetime
    period_ends_at: datetime
    stage: Stage
    next_stage: NextStage | None


class HistoryEntry(msgspec.Struct, frozen=True):
    """One change. `points` sum to `available + pending`; `owed_change` sum to `owed` (docs/points.md)."""

    id: uuid.UUID
    kind: str
    points: int
    owed_change: int
    miles: int
    reason: str
    occurred_at: datetime
    purchase_id: uuid.UUID | None
    refund_id: uuid.UUID | None


class HistoryPage(msgspec.Struct, frozen=True):
    items: list[HistoryEntry]
    next_cursor: str | None


class MemberCodeView(msgspec.Struct, frozen=True):
    code: str
    expires_at: datetime
    step_s: int
    card_number: str
    slot: int
    qr_svg: str
    code128_svg: str
