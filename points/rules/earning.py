"""How many points and miles a basket earns: pure, integers only, times passed in.

The documented rules, in the order they are applied:

1. **Earning base = what was actually paid.** A line's amount is `quantity * unit_price_minor -
   discount_minor` (never below 0). Lines whose category or SKU is non-earning (gift vouchers, bags,
   fees by default) earn nothing. The part paid with points (`points_redeemed * point_value_minor`)
   is spread over *all* lines in proportion to their amounts, so only the earning lines' share of it
   lowers the base. The shares are whole minor units that add up exactly to the points payment
   (cumulative flooring in `line_no` order). A points payment larger than the basket is a ValueError:
   the caller validates it first.
2. **Multipliers: the best one wins, they never stack.** For each earning line the candidates are its
   SKU percent, its category percent, the store percent, and every campaign active at `sold_at`
   (`starts_at <= sold_at < ends_at`) whose categories include the line's (empty = all) and whose
   stores include the store (empty = all). The highest percent applies; 100 (the base rate) when no
   candidate applies. Multipliers are at least 100: to stop a line earning, list it as non-earning.
   On a tie the first candidate in the order SKU, category, store, campaigns (policy order) is named.
3. **Points are floored once over the whole basket:** `floor(sum(paid_i * percent_i) *
   points_per_unit / (unit_minor * 100))`. Flooring per line would lose a fraction on every line.
   Then `max_points_per_transaction`, if set, caps the result.
4. **Miles** are `floor(earning base * miles_per_unit / miles_unit_minor)`: the base rate only, with
   no multipliers and no cap, but on the same base (non-earning lines and the points-paid part
   excluded), since miles measure spending, not promotions.
5. **Late postings:** `sold_at` is the sale time given by the register, not the posting time, so a
   sale made during a campaign earns the campaign rate however late it arrives.

`Award.applied` explains the result: the base rate, the winning multiplier of each line that had one,
each excluded line, the points payment and the cap when it cut the award.

`Award.lines` says what each line earned, so a return reverses exactly what the returned lines earned:
the basket's points are shared by the lines in proportion to `paid x percent`, its miles in proportion
to `paid` (earning lines only), and the points redeemed in proportion to the line amounts, each by
cumulative flooring in `line_no` order, so the lines' shares add up exactly to the basket's figures.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

import msgspec

from domain.shares import split_by_weights

PERCENT_BASE = 100  # integer percent: 100 = x1, 200 = x2, 150 = x1.5


class SaleLine(msgspec.Struct, frozen=True):
    """One line of a receipt as the register sends it."""

    line_no: int
    sku: str
    category: str
    quantity: int
    unit_price_minor: int
    discount_minor: int = 0

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise ValueError(f"line {self.line_no}: quantity must be at least 1")
        if self.unit_price_minor < 0 or self.discount_minor < 0:
            raise ValueError(f"line {self.line_no}: prices and discounts cannot be negative")

    @property
    def amount_minor(self) -> int:
        """What the customer owes for the line after its discount; a discount never makes it negative."""
        return max(0, self.quantity * self.unit_price_minor - self.discount_minor)


class Campaign(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A time-boxed multiplier, active on `[starts_at, ends_at)`; empty sets mean every category/store."""

    name: str
    percent: int
    starts_at: datetime
    ends_at: datetime
    categories: frozenset[str] = frozenset()
    store_ids: frozenset[uuid.UUID] = frozenset()

    def __post_init__(self) -> None:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError(f"campaign {self.name!r}: starts_at and ends_at need a time zone")
        if self.ends_at <= self.starts_at:
            raise ValueError(f"campaign {self.name!r}: ends_at must be after starts_at")
        _check_percent(f"campaign {self.name!r}", self.percent)

    def applies(self, category: str | None, store_id: uuid.UUID, sold_at: datetime) -> bool:
        """`category` None: the question is not about a product line (e.g. a check-in)."""
        return (
            self.starts_at <= sold_at < self.ends_at
            and (not self.categories or category is None or category in self.categories)
            and (not self.store_ids or store_id in self.store_ids)
        )


class EarningPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Earning rates and multipliers. Defaults: 1 point per 100 yen paid, 1 mile per yen (MUJI style)."""

    points_per_unit: int = 1
    unit_minor: int = 100
    miles_per_unit: int = 1
    miles_unit_minor: int = 1
    point_value_minor: int = 1  # one point pays this much
    non_earning_categories: frozenset[str] = frozenset({"gift_voucher", "bag", "fee"})
    non_earning_skus: frozenset[str] = frozenset()
    sku_percent: dict[str, int] = msgspec.field(default_factory=dict)
    category_percent: dict[str, int] = msgspec.field(default_factory=dict)
    store_percent: dict[uuid.UUID, int] = msgspec.field(default_factory=dict)
    campaigns: tuple[Campaign, ...] = ()
    max_points_per_transaction: int | None = None

    def __post_init__(self) -> None:
        if self.unit_minor < 1 or self.miles_unit_minor < 1 or self.point_value_minor < 1:
            raise ValueError("unit_minor, miles_unit_minor and point_value_minor must be at least 1")
        if self.points_per_unit < 0 or self.miles_per_unit < 0:
            raise ValueError("points_per_unit and miles_per_unit cannot be negative")
        if self.max_points_per_transaction is not None and self.max_points_per_transaction < 0:
            raise ValueError("max_points_per_transaction cannot be negative")
        percents: list[tuple[str, Iterable[tuple[object, int]]]] = [
            ("sku_percent", self.sku_percent.items()),
            ("category_percent", self.category_percent.items()),
            ("store_percent", self.store_percent.items()),
        ]
        for field, items in percents:
            for key, percent in items:
                _check_percent(f"{field}[{key}]", percent)


class AppliedRule(msgspec.Struct, frozen=True):
    """One reason behind an award, for the receipt, support and audits."""

    rule: str  # base_rate, sku_multiplier, category_multiplier, store_multiplier, campaign,
    # non_earning_line, points_payment, transaction_cap
    detail: str
    percent: int | None = None
    line_no: int | None = None


class LineAward(msgspec.Struct, frozen=True):
    """One line's share of a basket's award."""

    line_no: int
    points: int  # of the basket's points (after its cap)
    miles: int
    points_paid: int  # of the points redeemed for the basket
    paid_with_points_minor: int  # of the money value those points paid, in minor units
    earning_minor: int  # what it paid in money towards points (0 for a non-earning line)


class Award(msgspec.Struct, frozen=True):
    points: int
    miles: int
    earning_minor: int  # the paid amount points and miles were computed on
    paid_with_points_minor: int
    applied: list[AppliedRule]
    lines: list[LineAward]


def award_for_basket(
    policy: EarningPolicy,
    lines: Sequence[SaleLine],
    store_id: uuid.UUID,
    sold_at: datetime,
    points_redeemed: int,
) -> Award:
    """Points and miles for a sale made at `sold_at` (the sale time, even when posted late)."""
    if sold_at.tzinfo is None:
        raise ValueError("sold_at needs a time zone")
    if points_redeemed < 0:
        raise ValueError("points_redeemed cannot be negative")
    ordered = sorted(lines, key=lambda line: line.line_no)
    if len({line.line_no for line in ordered}) != len(ordered):
        raise ValueError("line numbers must be unique")
    total = sum(line.amount_minor for line in ordered)
    paid_with_points = points_redeemed * policy.point_value_minor
    if paid_with_points > total:
        raise ValueError(f"points pay {paid_with_points}, more than the basket total {total}")

    applied = [AppliedRule("base_rate", _base_rate_detail(policy), percent=PERCENT_BASE)]
    amounts = [line.amount_minor for line in ordered]
    paid_by_line = [0] * len(ordered)  # what each earning line paid in money (0 for the others)
    weight_by_line = [0] * len(ordered)  # paid x percent
    points_share_earning = 0
    paid_with_points_by_line = split_by_weights(paid_with_points, amounts)
    for index, (line, points_share) in enumerate(zip(ordered, paid_with_points_by_line, strict=True)):
        excluded = _non_earning_reason(policy, line)
        if excluded is not None:
            applied.append(AppliedRule("non_earning_line", excluded, line_no=line.line_no))
            continue
        paid = line.amount_minor - points_share
        percent = PERCENT_BASE
        best = _best_multiplier(policy, line, store_id, sold_at)
        if best is not None:
            percent, rule = best
            applied.append(rule)
        paid_by_line[index] = paid
        weight_by_line[index] = paid * percent
        points_share_earning += points_share

    if paid_with_points:
        applied.append(
            AppliedRule(
                "points_payment",
                f"{points_redeemed} points paid {paid_with_points}, "
                f"{points_share_earning} of it on earning lines",
            )
        )
    earning_minor = sum(paid_by_line)
    points = sum(weight_by_line) * policy.points_per_unit // (policy.unit_minor * PERCENT_BASE)
    cap = policy.max_points_per_transaction
    if cap is not None and points > cap:
        applied.append(AppliedRule("transaction_cap", f"capped at {cap} points from {points}"))
        points = cap
    miles = earning_minor * policy.miles_per_unit // policy.miles_unit_minor
    line_awards = [
        LineAward(line.line_no, line_points, line_miles, line_paid, line_paid_minor, line_earning)
        for line, line_points, line_miles, line_paid, line_paid_minor, line_earning in zip(
            ordered,
            split_by_weights(points, weight_by_line),
            split_by_weights(miles, paid_by_line),
            split_by_weights(points_redeemed, amounts),
            paid_with_points_by_line,
            paid_by_line,
            strict=True,
        )
    ]
    return Award(
        points=points,
        miles=miles,
        earning_minor=earning_minor,
        paid_with_points_minor=paid_with_points,
        applied=applied,
        lines=line_awards,
    )


def _check_percent(what: str, percent: int) -> None:
    if percent < PERCENT_BASE:
        raise ValueError(f"{what}: a multiplier is at least {PERCENT_BASE} (x1); got {percent}")


def _non_earning_reason(policy: EarningPolicy, line: SaleLine) -> str | None:
    if line.category in policy.non_earning_categories:
        return f"category {line.category} earns no points"
    if line.sku in policy.non_earning_skus:
        return f"sku {line.sku} earns no points"
    return None


def _best_multiplier(
    policy: EarningPolicy, line: SaleLine, store_id: uuid.UUID, sold_at: datetime
) -> tuple[int, AppliedRule] | None:
    """The highest multiplier that applies to the line; on a tie, the first candidate (most specific)."""
    candidates: list[tuple[int, AppliedRule]] = []
    if (percent := policy.sku_percent.get(line.sku)) is not None:
        candidates.append(_multiplier("sku_multiplier", f"sku {line.sku}", percent, line))
    if (percent := policy.category_percent.get(line.category)) is not None:
        candidates.append(_multiplier("category_multiplier", line.category, percent, line))
    if (percent := policy.store_percent.get(store_id)) is not None:
        candidates.append(_multiplier("store_multiplier", "store", percent, line))
    for campaign in policy.campaigns:
        if campaign.applies(line.category, store_id, sold_at):
            candidates.append(_multiplier("campaign", campaign.name, campaign.percent, line))
    return max(candidates, key=lambda candidate: candidate[0], default=None)


def _multiplier(rule: str, what: str, percent: int, line: SaleLine) -> tuple[int, AppliedRule]:
    return percent, AppliedRule(rule, f"{what} {_times(percent)}", percent=percent, line_no=line.line_no)


def _times(percent: int) -> str:
    """200 -> 'x2', 150 -> 'x1.5', 125 -> 'x1.25': the multiplier as people read it, without floats."""
    whole, hundredths = divmod(percent, PERCENT_BASE)
    return f"x{whole}" if not hundredths else f"x{whole}.{hundredths:02d}".rstrip("0")


def _base_rate_detail(policy: EarningPolicy) -> str:
    return (
        f"{policy.points_per_unit} point(s) per {policy.unit_minor} paid, "
        f"{policy.miles_per_unit} mile(s) per {policy.miles_unit_minor} paid"
    )
