"""Which lots a redemption or a reversal takes, repayment, returned lots (points.rules.ledger)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from points.rules.ledger import (
    LotTake,
    OpenLot,
    repayment,
    returned_lot_expiry,
    reverse,
    take_first_expiring,
)

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def lot(remaining: int, days: int) -> OpenLot:
    return OpenLot(uuid.uuid4(), remaining, NOW + timedelta(days=days))


def test_takes_from_the_lots_in_order_and_each_at_most_what_it_has() -> None:
    lots = [lot(30, 10), lot(0, 20), lot(50, 30), lot(40, 40)]
    takes = take_first_expiring(lots, 60)
    assert [(take.lot_id, take.points) for take in takes] == [(lots[0].id, 30), (lots[2].id, 30)]


def test_takes_less_only_when_the_lots_hold_less() -> None:
    assert sum(take.points for take in take_first_expiring([lot(10, 1), lot(5, 2)], 100)) == 15
    assert take_first_expiring([lot(10, 1)], 0) == []
    with pytest.raises(ValueError, match="negative"):
        take_first_expiring([], -1)


def test_a_reversal_takes_from_its_own_lot_first_and_owes_what_was_spent() -> None:
    own, other = lot(10, 300), lot(100, 5)
    reversal = reverse([own], [other], 50)
    assert [(take.lot_id, take.points) for take in reversal.takes] == [(own.id, 10), (other.id, 40)]
    assert reversal.owed == 0
    assert reverse([lot(0, 300)], [lot(5, 5)], 50).owed == 45


@pytest.mark.parametrize(("owed", "earned", "repaid"), [(0, 10, 0), (4, 10, 4), (30, 10, 10)])
def test_new_points_repay_what_is_owed_first(owed: int, earned: int, repaid: int) -> None:
    assert repayment(owed, earned) == repaid


def test_returned_points_last_as_long_as_their_lots_and_at_least_thirty_days() -> None:
    soon = LotTake(uuid.uuid4(), 5, NOW + timedelta(days=3))
    late = LotTake(uuid.uuid4(), 5, NOW + timedelta(days=200))
    assert returned_lot_expiry([soon], NOW) == NOW + timedelta(days=30)
    assert returned_lot_expiry([soon, late], NOW) == NOW + timedelta(days=200)


@given(st.lists(st.integers(0, 100), max_size=8), st.lists(st.integers(0, 150), max_size=10))
def test_redemptions_never_take_more_than_the_lots_hold(remaining: list[int], redemptions: list[int]) -> None:
    """A balance never goes negative: each redemption is applied only when the lots cover it."""
    lots = [lot(points, days) for days, points in enumerate(remaining)]
    for points in redemptions:
        takes = take_first_expiring(lots, points)
        if sum(take.points for take in takes) < points:
            continue  # refused as insufficient: nothing is applied
        taken = {take.lot_id: take.points for take in takes}
        lots = [OpenLot(o.id, o.remaining - taken.get(o.id, 0), o.expires_at) for o in lots]
        assert all(o.remaining >= 0 for o in lots)
