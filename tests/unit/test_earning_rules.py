"""Earning rules against baskets worked out by hand, plus the invariants hypothesis can search for."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from points.rules.earning import (
    AppliedRule,
    Award,
    Campaign,
    EarningPolicy,
    SaleLine,
    award_for_basket,
)

GINZA = uuid.UUID("00000000-0000-7000-8000-000000000001")
UMEDA = uuid.UUID("00000000-0000-7000-8000-000000000002")
SOLD_AT = datetime(2027, 1, 5, 3, 0, tzinfo=UTC)
BASE = EarningPolicy()


def line(
    line_no: int,
    amount: int,
    category: str = "stationery",
    sku: str | None = None,
    quantity: int = 1,
    discount: int = 0,
) -> SaleLine:
    """A line whose unit price is `amount` (so its amount is `quantity * amount - discount`)."""
    return SaleLine(
        line_no=line_no,
        sku=sku or f"SKU-{line_no}",
        category=category,
        quantity=quantity,
        unit_price_minor=amount,
        discount_minor=discount,
    )


def award(
    lines: list[SaleLine],
    policy: EarningPolicy = BASE,
    store_id: uuid.UUID = GINZA,
    sold_at: datetime = SOLD_AT,
    points_redeemed: int = 0,
) -> Award:
    return award_for_basket(policy, lines, store_id, sold_at, points_redeemed)


def rules_named(result: Award, rule: str) -> list[AppliedRule]:
    return [applied for applied in result.applied if applied.rule == rule]


# --- earning base ----------------------------------------------------------------------------------

# (case, policy, lines, points_redeemed, points, miles, earning_minor)
BASE_CASES: list[tuple[str, EarningPolicy, list[SaleLine], int, int, int, int]] = [
    ("1 point per 100 yen, floored", BASE, [line(1, 1_280)], 0, 12, 1_280, 1_280),
    ("under 100 yen earns miles only", BASE, [line(1, 99)], 0, 0, 99, 99),
    (
        "quantity times price less discount",
        BASE,
        [line(1, 500, quantity=3, discount=200)],
        0,
        13,
        1_300,
        1_300,
    ),
    ("a discount larger than the line leaves 0", BASE, [line(1, 300, discount=500)], 0, 0, 0, 0),
    (
        "bags and gift vouchers earn nothing",
        BASE,
        [line(1, 1_000), line(2, 50, "bag"), line(3, 3_000, "gift_voucher"), line(4, 110, "fee")],
        0,
        10,
        1_000,
        1_000,
    ),
    (
        "a non-earning SKU earns nothing",
        EarningPolicy(non_earning_skus=frozenset({"TOBACCO"})),
        [line(1, 1_000), line(2, 600, "food", sku="TOBACCO")],
        0,
        10,
        1_000,
        1_000,
    ),
    ("floored once over the basket, not per line", BASE, [line(n, 150) for n in (1, 2, 3)], 0, 4, 450, 450),
    (
        "multiplied amounts are summed before flooring",
        EarningPolicy(category_percent={"stationery": 150}),
        [line(1, 199), line(2, 199)],  # 298.5 + 298.5 = 597 -> 5; per line it would be 2 + 2
        0,
        5,
        398,
        398,
    ),
    (
        "points payment spread over all lines: only the earning lines' share lowers the base",
        BASE,
        [line(1, 3_000), line(2, 1_000, "gift_voucher")],
        400,  # 300 on the stationery, 100 on the voucher
        27,
        2_700,
        2_700,
    ),
    (
        "points payment shares are whole yen that add up exactly",
        BASE,
        [line(1, 100), line(2, 100), line(3, 100, "bag")],
        100,  # shares 33, 33, 34
        1,
        134,
        134,
    ),
    (
        "a point worth 2 yen pays twice as much",
        EarningPolicy(point_value_minor=2),
        [line(1, 1_000)],
        100,
        8,
        800,
        800,
    ),
    ("paying everything with points earns nothing", BASE, [line(1, 1_000)], 1_000, 0, 0, 0),
    (
        "miles use the base rate, never multipliers",
        EarningPolicy(category_percent={"stationery": 300}),
        [line(1, 1_000)],
        0,
        30,
        1_000,
        1_000,
    ),
    (
        "miles per unit and unit are configurable and floored",
        EarningPolicy(miles_per_unit=2, miles_unit_minor=100, points_per_unit=3, unit_minor=200),
        [line(1, 1_050)],
        0,
        15,  # 1_050 * 3 / 200
        21,  # 1_050 * 2 / 100
        1_050,
    ),
    ("an empty basket earns nothing", BASE, [], 0, 0, 0, 0),
]


@pytest.mark.parametrize(
    ("policy", "lines", "points_redeemed", "points", "miles", "earning_minor"),
    [case[1:] for case in BASE_CASES],
    ids=[case[0] for case in BASE_CASES],
)
def test_points_and_miles_on_the_amount_paid(
    policy: EarningPolicy,
    lines: list[SaleLine],
    points_redeemed: int,
    points: int,
    miles: int,
    earning_minor: int,
) -> None:
    result = award(lines, policy, points_redeemed=points_redeemed)
    assert (result.points, result.miles, result.earning_minor) == (points, miles, earning_minor)
    assert result.paid_with_points_minor == points_redeemed * policy.point_value_minor


def test_line_amount_is_never_negative() -> None:
    assert line(1, 300, quantity=2, discount=100).amount_minor == 500
    assert line(1, 300, discount=301).amount_minor == 0


def test_lines_are_spread_in_line_number_order_whatever_order_they_arrive_in() -> None:
    lines = [line(1, 100), line(2, 100), line(3, 100, "bag")]
    assert award(lines, points_redeemed=100) == award(lines[::-1], points_redeemed=100)


# --- multipliers: the best one wins ----------------------------------------------------------------

SPRING_START = datetime(2027, 3, 1, tzinfo=UTC)
SPRING = Campaign(
    "spring food",
    500,
    SPRING_START,
    SPRING_START + timedelta(days=7),
    categories=frozenset({"food"}),
)
EVERYTHING_X10 = Campaign("anniversary", 1_000, SPRING_START, SPRING_START + timedelta(days=1))
GINZA_ONLY_X4 = Campaign(
    "ginza week", 400, SPRING_START, SPRING_START + timedelta(days=7), store_ids=frozenset({GINZA})
)
MULTIPLIERS = EarningPolicy(
    sku_percent={"PEN-1": 300},
    category_percent={"stationery": 200, "kitchen": 150},
    store_percent={UMEDA: 150},
    campaigns=(SPRING, GINZA_ONLY_X4, EVERYTHING_X10),
)
BEFORE_SPRING = SPRING_START - timedelta(days=1)
IN_SPRING = SPRING_START + timedelta(days=3)
IN_ANNIVERSARY = SPRING_START + timedelta(hours=1)

# (case, line, store, sold_at, winning rule or None, winning percent) for a 1_000 yen line
PRECEDENCE_CASES: list[tuple[str, SaleLine, uuid.UUID, datetime, str | None, int]] = [
    ("SKU beats category", line(1, 1_000, sku="PEN-1"), GINZA, BEFORE_SPRING, "sku_multiplier", 300),
    ("category applies", line(1, 1_000), GINZA, BEFORE_SPRING, "category_multiplier", 200),
    ("category beats a lower store rate", line(1, 1_000), UMEDA, BEFORE_SPRING, "category_multiplier", 200),
    (
        "store applies to other lines",
        line(1, 1_000, "clothing"),
        UMEDA,
        BEFORE_SPRING,
        "store_multiplier",
        150,
    ),
    ("no multiplier: base rate", line(1, 1_000, "clothing"), GINZA, BEFORE_SPRING, None, 100),
    ("campaign beats all when higher", line(1, 1_000, "food"), GINZA, IN_SPRING, "campaign", 500),
    (
        "campaign limited to its categories",
        line(1, 1_000, "clothing"),
        UMEDA,
        IN_SPRING,
        "store_multiplier",
        150,
    ),
    ("campaign limited to its stores", line(1, 1_000, "clothing"), GINZA, IN_SPRING, "campaign", 400),
    ("best of several campaigns", line(1, 1_000, "food"), GINZA, IN_ANNIVERSARY, "campaign", 1_000),
    (
        "SKU wins where no campaign applies",
        line(1, 1_000, sku="PEN-1"),
        UMEDA,
        IN_SPRING,
        "sku_multiplier",
        300,
    ),
    ("SKU loses to a higher campaign", line(1, 1_000, sku="PEN-1"), UMEDA, IN_ANNIVERSARY, "campaign", 1_000),
    (
        "equal store and category: category named",
        line(1, 1_000, "kitchen"),
        UMEDA,
        BEFORE_SPRING,
        "category_multiplier",
        150,
    ),
]


@pytest.mark.parametrize(
    ("sale_line", "store_id", "sold_at", "rule", "percent"),
    [case[1:] for case in PRECEDENCE_CASES],
    ids=[case[0] for case in PRECEDENCE_CASES],
)
def test_the_best_multiplier_wins_and_multipliers_do_not_stack(
    sale_line: SaleLine, store_id: uuid.UUID, sold_at: datetime, rule: str | None, percent: int
) -> None:
    result = award([sale_line], MULTIPLIERS, store_id=store_id, sold_at=sold_at)
    assert result.points == 10 * percent // 100
    assert result.miles == 1_000
    winners = [applied for applied in result.applied if applied.line_no == sale_line.line_no]
    if rule is None:
        assert winners == []
    else:
        assert [(w.rule, w.percent) for w in winners] == [(rule, percent)]


def test_applied_rules_explain_the_whole_award() -> None:
    policy = EarningPolicy(category_percent={"stationery": 200}, max_points_per_transaction=40)
    lines = [line(1, 2_000), line(2, 600, "food"), line(3, 500, "gift_voucher")]
    result = award(lines, policy, points_redeemed=310)  # shares 200, 60, 50
    assert result.applied == [
        AppliedRule("base_rate", "1 point(s) per 100 paid, 1 mile(s) per 1 paid", percent=100),
        AppliedRule("category_multiplier", "stationery x2", percent=200, line_no=1),
        AppliedRule("non_earning_line", "category gift_voucher earns no points", line_no=3),
        AppliedRule("points_payment", "310 points paid 310, 260 of it on earning lines"),
        AppliedRule("transaction_cap", "capped at 40 points from 41"),  # (1_800 * 2 + 540) / 100
    ]
    assert (result.points, result.miles, result.earning_minor) == (40, 2_340, 2_340)


def test_multiplier_detail_reads_as_people_say_it() -> None:
    policy = EarningPolicy(category_percent={"stationery": 150, "food": 125})
    result = award([line(1, 100), line(2, 100, "food")], policy)
    assert [a.detail for a in result.applied if a.line_no] == ["stationery x1.5", "food x1.25"]


# --- campaign time boundaries: [starts_at, ends_at), judged at the sale time ------------------------

TICK = timedelta(microseconds=1)
SPRING_END = SPRING.ends_at


@pytest.mark.parametrize(
    ("sold_at", "points"),
    [
        (SPRING_START - TICK, 10),
        (SPRING_START, 50),
        (SPRING_END - TICK, 50),
        (SPRING_END, 10),
        (SPRING_START.astimezone(ZoneInfo("Asia/Tokyo")), 50),
    ],
    ids=[
        "just before start",
        "at start (inclusive)",
        "just before end",
        "at end (exclusive)",
        "start, other zone",
    ],
)
def test_campaign_window_starts_inclusive_and_ends_exclusive(sold_at: datetime, points: int) -> None:
    assert (
        award([line(1, 1_000, "food")], EarningPolicy(campaigns=(SPRING,)), sold_at=sold_at).points == points
    )


def test_late_posting_earns_the_campaign_rate_of_its_sale_time() -> None:
    """A register offline during the campaign posts after it ended; the caller passes the sale time."""
    policy = EarningPolicy(campaigns=(SPRING,))
    sold_at = SPRING_END - timedelta(hours=1)
    posted_at = SPRING_END + timedelta(days=2)
    assert award([line(1, 1_000, "food")], policy, sold_at=sold_at).points == 50
    assert award([line(1, 1_000, "food")], policy, sold_at=posted_at).points == 10


# --- cap ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "points", "capped"), [(4_999, 49, False), (5_000, 50, False), (5_100, 50, True)]
)
def test_transaction_cap(amount: int, points: int, capped: bool) -> None:
    result = award([line(1, amount)], EarningPolicy(max_points_per_transaction=50))
    assert result.points == points
    assert result.miles == amount  # miles are never capped
    assert bool(rules_named(result, "transaction_cap")) is capped


# --- refusals -------------------------------------------------------------------------------------


def test_points_payment_larger_than_the_basket_is_refused() -> None:
    with pytest.raises(ValueError, match="more than the basket total"):
        award([line(1, 1_000)], points_redeemed=1_001)


@pytest.mark.parametrize(
    ("lines", "sold_at", "points_redeemed", "message"),
    [
        ([line(1, 100), line(1, 200)], SOLD_AT, 0, "unique"),
        ([line(1, 100)], SOLD_AT.replace(tzinfo=None), 0, "time zone"),
        ([line(1, 100)], SOLD_AT, -1, "negative"),
    ],
    ids=["duplicate line numbers", "naive sale time", "negative redemption"],
)
def test_bad_baskets_are_refused(
    lines: list[SaleLine], sold_at: datetime, points_redeemed: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        award(lines, sold_at=sold_at, points_redeemed=points_redeemed)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: EarningPolicy(category_percent={"stationery": 50}), "at least 100"),
        (lambda: EarningPolicy(unit_minor=0), "at least 1"),
        (lambda: EarningPolicy(points_per_unit=-1), "cannot be negative"),
        (lambda: EarningPolicy(max_points_per_transaction=-1), "cannot be negative"),
        (lambda: Campaign("backwards", 200, SPRING_END, SPRING_START), "must be after"),
        (
            lambda: Campaign(
                "naive", 200, SPRING_START.replace(tzinfo=None), SPRING_END.replace(tzinfo=None)
            ),
            "time zone",
        ),
        (lambda: Campaign("half", 50, SPRING_START, SPRING_END), "at least 100"),
        (lambda: SaleLine(1, "SKU", "food", 0, 100), "quantity"),
        (lambda: SaleLine(1, "SKU", "food", 1, -100), "cannot be negative"),
    ],
    ids=[
        "multiplier below x1",
        "zero unit",
        "negative rate",
        "negative cap",
        "campaign ends before it starts",
        "campaign without time zone",
        "campaign below x1",
        "zero quantity",
        "negative price",
    ],
)
def test_invalid_policies_and_lines_are_refused(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_policy_decodes_from_program_json_and_rejects_typos() -> None:
    text = (
        b'{"store_percent": {"00000000-0000-7000-8000-000000000002": 150},'
        b' "campaigns": [{"name": "w", "percent": 300, "starts_at": "2027-03-01T00:00:00+09:00",'
        b' "ends_at": "2027-03-08T00:00:00+09:00", "categories": ["food"]}]}'
    )
    policy = msgspec.json.decode(text, type=EarningPolicy)
    assert policy.store_percent == {UMEDA: 150}
    assert policy.campaigns[0].categories == frozenset({"food"})
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.json.decode(b'{"category_percnt": {}}', type=EarningPolicy)


# --- properties -----------------------------------------------------------------------------------

CATEGORIES = ["stationery", "food", "kitchen", "bag", "gift_voucher"]
percents = st.integers(min_value=100, max_value=1_000)
policies = st.builds(
    EarningPolicy,
    points_per_unit=st.integers(0, 5),
    unit_minor=st.integers(1, 500),
    miles_per_unit=st.integers(0, 3),
    miles_unit_minor=st.integers(1, 100),
    point_value_minor=st.integers(1, 3),
    category_percent=st.dictionaries(st.sampled_from(CATEGORIES), percents, max_size=3),
    store_percent=st.dictionaries(st.sampled_from([GINZA, UMEDA]), percents, max_size=1),
    campaigns=st.lists(
        st.builds(
            Campaign,
            name=st.just("c"),
            percent=percents,
            starts_at=st.just(SOLD_AT - timedelta(days=1)),
            ends_at=st.just(SOLD_AT + timedelta(days=1)),
            categories=st.frozensets(st.sampled_from(CATEGORIES), max_size=2),
        ),
        max_size=2,
    ).map(tuple),
    max_points_per_transaction=st.none() | st.integers(0, 1_000),
)


@st.composite
def baskets(draw: st.DrawFn) -> list[SaleLine]:
    count = draw(st.integers(0, 6))
    return [
        line(
            n,
            draw(st.integers(0, 50_000)),
            draw(st.sampled_from(CATEGORIES)),
            quantity=draw(st.integers(1, 5)),
            discount=draw(st.integers(0, 5_000)),
        )
        for n in range(1, count + 1)
    ]


def _redeemable(policy: EarningPolicy, lines: list[SaleLine], fraction_percent: int) -> int:
    total = sum(sale_line.amount_minor for sale_line in lines)
    return total * fraction_percent // 100 // policy.point_value_minor


@given(policies, baskets(), st.integers(0, 100))
def test_award_is_never_negative_and_respects_the_cap(
    policy: EarningPolicy, lines: list[SaleLine], fraction_percent: int
) -> None:
    redeemed = _redeemable(policy, lines, fraction_percent)
    result = award(lines, policy, points_redeemed=redeemed)
    assert result.points >= 0
    assert result.miles >= 0
    assert 0 <= result.earning_minor <= sum(sale_line.amount_minor for sale_line in lines)
    if policy.max_points_per_transaction is not None:
        assert result.points <= policy.max_points_per_transaction


@given(policies, baskets(), st.integers(0, 100))
def test_points_payment_is_spread_without_losing_a_yen(
    policy: EarningPolicy, lines: list[SaleLine], fraction_percent: int
) -> None:
    earning_lines = [
        sale_line for sale_line in lines if sale_line.category not in policy.non_earning_categories
    ]
    redeemed = _redeemable(policy, earning_lines, fraction_percent)
    result = award(earning_lines, policy, points_redeemed=redeemed)
    total = sum(sale_line.amount_minor for sale_line in earning_lines)
    assert result.earning_minor == total - result.paid_with_points_minor


@given(
    policies,
    st.sampled_from(CATEGORIES),
    st.integers(0, 1_000_000),
    st.integers(0, 1_000_000),
    st.integers(0, 100),
)
def test_points_and_miles_are_monotone_in_spend_for_one_line(
    policy: EarningPolicy, category: str, amount_a: int, amount_b: int, redeemed_yen: int
) -> None:
    low, high = sorted((amount_a, amount_b))
    redeemed = min(redeemed_yen, low) // policy.point_value_minor
    less = award([line(1, low, category)], policy, points_redeemed=redeemed)
    more = award([line(1, high, category)], policy, points_redeemed=redeemed)
    assert less.points <= more.points
    assert less.miles <= more.miles


@given(policies, baskets())
def test_one_basket_earns_at_least_its_lines_apart(policy: EarningPolicy, lines: list[SaleLine]) -> None:
    """Flooring once over the basket: splitting a receipt never earns more."""
    uncapped = msgspec.structs.replace(policy, max_points_per_transaction=None)
    together = award(lines, uncapped).points
    apart = sum(award([sale_line], uncapped).points for sale_line in lines)
    assert together >= apart


@given(policies, baskets(), st.integers(0, 100))
def test_lines_share_exactly_the_basket_award(
    policy: EarningPolicy, lines: list[SaleLine], fraction_percent: int
) -> None:
    redeem = _redeemable(policy, lines, fraction_percent)
    result = award(lines, policy, points_redeemed=redeem)
    assert sum(line.points for line in result.lines) == result.points
    assert sum(line.miles for line in result.lines) == result.miles
    assert sum(line.points_paid for line in result.lines) == redeem
    assert all(line.points >= 0 and line.miles >= 0 and line.points_paid >= 0 for line in result.lines)


def test_a_non_earning_line_earns_no_share_of_the_basket() -> None:
    lines = [
        SaleLine(1, "VOUCHER", "gift_voucher", 1, 10_000),
        SaleLine(2, "PEN", "stationery", 1, 1_000),
    ]
    result = award(lines, EarningPolicy(category_percent={"stationery": 300}))
    assert [(line.line_no, line.points, line.miles) for line in result.lines] == [(1, 0, 0), (2, 30, 1_000)]
