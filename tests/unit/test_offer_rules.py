"""Offers' pure rules: eligibility, what an offer earns on a sale, terms and validity."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import msgspec
import pytest

from offers.rules.effects import PaidLine, Rates, coupon_applies, effect_on_sale
from offers.rules.eligibility import Ineligible, MemberUse, OfferFacts, ineligible
from offers.rules.terms import (
    AmountOff,
    BonusPoints,
    Multiplier,
    OfferState,
    Terms,
    VisitBonus,
    can_move,
    expected_cost_points,
    validity,
)
from timeline.segments import LifecycleStageIn, TraitSegment
from timeline.traits import LifecycleStage, TraitCounters, compute_traits

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
GINZA, SHIBUYA = uuid.uuid4(), uuid.uuid4()
NEW_MEMBER = compute_traits(
    TraitCounters(joined_at=NOW - timedelta(days=3)), [], NOW, "Asia/Tokyo", [0] * 168
)


def facts(**overrides: object) -> OfferFacts:
    values: dict[str, object] = {
        "state": OfferState.ACTIVE,
        "starts_at": NOW - timedelta(days=1),
        "ends_at": NOW + timedelta(days=1),
        "store_ids": frozenset(),
        "audience": TraitSegment(),
        "per_member_limit": 1,
        "budget_redemptions": None,
        "budget_points": None,
        "redemptions_used": 0,
        "points_used": 0,
    }
    values.update(overrides)
    return OfferFacts(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("offer", "use", "store", "clipped_counts", "expected"),
    [
        (facts(), MemberUse(), None, True, None),
        (facts(state=OfferState.PAUSED), MemberUse(), None, True, Ineligible.NOT_ACTIVE),
        (facts(state=OfferState.DRAFT), MemberUse(), None, True, Ineligible.NOT_ACTIVE),
        (facts(starts_at=NOW + timedelta(seconds=1)), MemberUse(), None, True, Ineligible.NOT_STARTED),
        (facts(ends_at=NOW), MemberUse(), None, True, Ineligible.EXPIRED),
        (
            facts(budget_redemptions=5, redemptions_used=5),
            MemberUse(),
            None,
            True,
            Ineligible.BUDGET_EXHAUSTED,
        ),
        (facts(budget_points=100, points_used=100), MemberUse(), None, True, Ineligible.BUDGET_EXHAUSTED),
        (facts(budget_points=100, points_used=99), MemberUse(), None, True, None),
        (
            facts(budget_points=35, points_used=30, least_points_per_use=10),
            MemberUse(),
            None,
            True,
            Ineligible.BUDGET_EXHAUSTED,
        ),
        (facts(budget_points=40, points_used=30, least_points_per_use=10), MemberUse(), None, True, None),
        (facts(store_ids=frozenset({GINZA})), MemberUse(), SHIBUYA, True, Ineligible.OTHER_STORE),
        (facts(store_ids=frozenset({GINZA})), MemberUse(), GINZA, True, None),
        (facts(store_ids=frozenset({GINZA})), MemberUse(), None, True, None),  # not at a store: may go
        (
            facts(audience=TraitSegment(all=[LifecycleStageIn(in_=[LifecycleStage.LAPSED])])),
            MemberUse(),
            None,
            True,
            Ineligible.NOT_IN_AUDIENCE,
        ),
        (
            facts(per_member_limit=2),
            MemberUse(activated=True, redemptions=2),
            None,
            False,
            Ineligible.LIMIT_REACHED,
        ),
        (facts(per_member_limit=2), MemberUse(activated=True, redemptions=1), None, False, None),
        (facts(), MemberUse(activated=True), None, True, Ineligible.ALREADY_ACTIVATED),
        (facts(), MemberUse(activated=True), None, False, None),
    ],
)
def test_eligibility(
    offer: OfferFacts,
    use: MemberUse,
    store: uuid.UUID | None,
    clipped_counts: bool,
    expected: Ineligible | None,
) -> None:
    assert ineligible(offer, use, NEW_MEMBER, store, NOW, clipped_counts=clipped_counts) == expected


def test_the_register_does_not_ask_the_audience_again() -> None:
    lapsed_only = facts(audience=TraitSegment(all=[LifecycleStageIn(in_=[LifecycleStage.LAPSED])]))
    assert ineligible(lapsed_only, MemberUse(activated=True), None, GINZA, NOW, clipped_counts=False) is None


LINES = [
    PaidLine(1, "4550001", "linen", 3_000),
    PaidLine(2, "4550002", "stationery", 1_000),
    PaidLine(3, "GIFT", "gift_voucher", 0),  # non-earning
]
RATES = Rates(points_per_unit=1, unit_minor=100)


@pytest.mark.parametrize(
    ("terms", "points", "line_points"),
    [
        (Multiplier(percent=200), 40, {1: 30, 2: 10}),  # x2 on 4,000: 40 extra points
        (Multiplier(percent=300, category="linen"), 60, {1: 60}),
        (Multiplier(percent=150, category="linen", min_spend_minor=3_001), None, None),
        (Multiplier(percent=200, category="food"), None, None),
        (BonusPoints(points=100, category="stationery"), 100, {2: 100}),
        (BonusPoints(points=100, sku="4550001"), 100, {1: 100}),
        (BonusPoints(points=100, sku="GIFT"), None, None),  # only an unpaid, non-earning line matches
        (VisitBonus(points=50), 50, {1: 37, 2: 13}),
        (VisitBonus(points=50, min_spend_minor=5_000), None, None),
    ],
)
def test_what_a_points_offer_earns_on_a_sale(
    terms: Terms, points: int | None, line_points: dict[int, int] | None
) -> None:
    effect = effect_on_sale(terms, LINES, 4_000, RATES)
    if points is None:
        assert effect is None
    else:
        assert effect is not None
        assert effect.points == points
        assert sum(effect.line_points.values()) == points
        assert effect.line_points == line_points


def test_a_coupon_needs_the_spend_before_its_discount() -> None:
    coupon = AmountOff(amount_off_minor=500, min_spend_minor=3_000)
    assert coupon_applies(coupon, 2_500)  # 3,000 before the 500 off
    assert not coupon_applies(coupon, 2_499)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"kind":"multiplier","percent":100}', "percent"),
        (b'{"kind":"multiplier","percent":"200"}', "Expected `int`"),
        (b'{"kind":"bonus_points","points":10}', "exactly one of category and sku"),
        (b'{"kind":"bonus_points","points":10,"category":"a","sku":"b"}', "exactly one"),
        (b'{"kind":"amount_off","amount_off_minor":500,"min_spend_minor":100}', "at least amount_off_minor"),
        (b'{"kind":"cashback","amount":1}', "Invalid value 'cashback'"),
        (b'{"kind":"visit_bonus","points":0}', "points"),
    ],
)
def test_bad_terms_are_refused(body: bytes, error: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=error):
        msgspec.json.decode(body, type=Terms)


def test_offer_states_move_one_way_to_ended() -> None:
    assert can_move(OfferState.DRAFT, OfferState.ACTIVE)
    assert can_move(OfferState.ACTIVE, OfferState.PAUSED)
    assert can_move(OfferState.PAUSED, OfferState.ACTIVE)
    assert not can_move(OfferState.ENDED, OfferState.ACTIVE)
    assert not can_move(OfferState.PAUSED, OfferState.DRAFT)


def test_validity_is_whole_local_days_of_the_program_zone() -> None:
    starts, ends = validity(date(2026, 12, 1), date(2026, 12, 31), "Asia/Tokyo")
    assert starts == datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    assert ends == datetime(2026, 12, 31, 15, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="before"):
        validity(date(2026, 12, 2), date(2026, 12, 1), "Asia/Tokyo")


def test_the_expected_cost_of_an_offer_in_points() -> None:
    assert expected_cost_points(Multiplier(percent=300), typical_basket_points=30, point_value_minor=1) == 60
    assert expected_cost_points(BonusPoints(points=100, sku="x"), 30, 1) == 100
    assert expected_cost_points(AmountOff(amount_off_minor=500), 30, 1) == 500
    assert expected_cost_points(AmountOff(amount_off_minor=501), 30, 2) == 251
