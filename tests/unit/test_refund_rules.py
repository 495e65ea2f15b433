"""What a return reverses, line by line (points.rules.refunds): pure, integers only."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from points.errors import DuplicateLine, RefundExceedsSale, UnknownLine
from points.rules.refunds import StoredLine, cumulative_share, refund_by_amount, refund_by_lines


def stored(
    line_no: int, quantity: int, unit_price: int, points: int, miles: int = 0, paid: int = 0, **kw: int
) -> StoredLine:
    return StoredLine(
        line_no=line_no,
        sku=f"SKU-{line_no}",
        category="stationery",
        quantity=quantity,
        unit_price_minor=unit_price,
        points_earned=points,
        miles_earned=miles,
        points_paid=paid,
        **kw,
    )


def test_returning_the_only_earning_line_reverses_all_it_earned_whatever_else_was_bought() -> None:
    voucher = stored(1, 1, 10_000, points=0, miles=0)
    pen = stored(2, 1, 1_000, points=30, miles=1_000)
    plan = refund_by_lines([voucher, pen], [(2, 1)])
    assert (plan.amount_minor, plan.points_reversed, plan.miles_reversed) == (1_000, 30, 1_000)
    assert plan.lines[0] == voucher


def test_returning_a_non_earning_line_reverses_nothing() -> None:
    plan = refund_by_lines([stored(1, 1, 10_000, points=0), stored(2, 1, 1_000, points=30)], [(1, 1)])
    assert (plan.amount_minor, plan.points_reversed, plan.miles_reversed) == (10_000, 0, 0)


@pytest.mark.parametrize(
    ("quantities", "reversed_each"),
    [
        ([1, 1, 1], [3, 3, 4]),  # cumulative floors: 3 of 10, 6 of 10, then all
        ([2, 1], [6, 4]),
        ([3], [10]),
    ],
)
def test_a_line_returned_piece_by_piece_reverses_exactly_what_it_earned(
    quantities: list[int], reversed_each: list[int]
) -> None:
    lines = [stored(1, 3, 500, points=10)]
    moved = []
    for quantity in quantities:
        plan = refund_by_lines(lines, [(1, quantity)])
        moved.append(plan.points_reversed)
        lines = plan.lines
    assert moved == reversed_each
    assert lines[0].points_reversed == 10


def test_money_handed_back_adds_up_to_the_money_paid_when_a_point_is_worth_ten_yen() -> None:
    # 3 x 5 yen, 1 point (10 yen) paid part of it: 5 yen were paid in money.
    lines = [stored(1, 3, 5, points=0, paid=1, paid_with_points_minor=10)]
    money = points = 0
    for _ in range(3):
        plan = refund_by_lines(lines, [(1, 1)])
        money += plan.money_returned_minor
        points += plan.points_returned
        lines = plan.lines
    assert (money, points) == (5, 1)


def test_a_line_paid_entirely_with_points_gives_back_points_only() -> None:
    lines = [stored(1, 1, 5, points=0, paid=1, paid_with_points_minor=5), stored(2, 1, 5, points=0)]
    plan = refund_by_lines(lines, [(1, 1)])
    assert (plan.money_returned_minor, plan.points_returned) == (0, 1)


def test_returned_points_follow_what_paid_for_the_line() -> None:
    lines = [stored(1, 1, 1_000, points=5, paid=400), stored(2, 1, 1_000, points=5, paid=600)]
    plan = refund_by_lines(lines, [(2, 1)])
    assert plan.points_returned == 600


def test_an_amount_comes_off_the_best_earning_lines_first() -> None:
    voucher = stored(1, 1, 1_800_000, points=0)
    sofa = stored(2, 1, 200_000, points=2_000, miles=200_000)
    plan = refund_by_amount([voucher, sofa], 200_000)
    assert [(change.line_no, change.amount_minor) for change in plan.changes] == [(2, 200_000)]
    assert (plan.points_reversed, plan.miles_reversed) == (2_000, 200_000)
    doubled = stored(3, 1, 1_000, points=20)  # x2 multiplier: more points per yen than the sofa
    plan = refund_by_amount([sofa, doubled], 1_500)
    assert [(change.line_no, change.amount_minor) for change in plan.changes] == [(2, 500), (3, 1_000)]


def test_a_line_already_refunded_by_amount_gives_no_more_money_when_returned() -> None:
    lines = refund_by_amount([stored(1, 2, 1_000, points=20)], 1_500).lines
    plan = refund_by_lines(lines, [(1, 2)])
    assert (plan.amount_minor, plan.points_reversed) == (500, 5)
    assert plan.lines[0].refunded_minor == 2_000


def test_impossible_returns_are_refused() -> None:
    lines = [stored(1, 2, 500, points=10)]
    with pytest.raises(RefundExceedsSale):
        refund_by_lines(lines, [(1, 3)])
    with pytest.raises(UnknownLine):
        refund_by_lines(lines, [(9, 1)])
    with pytest.raises(DuplicateLine):
        refund_by_lines(lines, [(1, 1), (1, 1)])
    with pytest.raises(RefundExceedsSale):
        refund_by_amount(lines, 1_001)


@pytest.mark.parametrize(("total", "part", "whole", "share"), [(10, 1, 3, 3), (10, 3, 3, 10), (10, 0, 0, 10)])
def test_cumulative_share(total: int, part: int, whole: int, share: int) -> None:
    assert cumulative_share(total, part, whole) == share


# --- properties -----------------------------------------------------------------------------------


@st.composite
def sales(draw: st.DrawFn) -> list[StoredLine]:
    lines = []
    for n in range(1, draw(st.integers(1, 5)) + 1):
        quantity, price = draw(st.integers(1, 6)), draw(st.integers(0, 5_000))
        earns = price > 0  # earnings are shares of the money paid: a free line earns nothing
        lines.append(
            stored(
                n,
                quantity,
                price,
                points=draw(st.integers(0, 500)) if earns else 0,
                miles=draw(st.integers(0, 5_000)) if earns else 0,
                paid=draw(st.integers(0, 300)),
                paid_with_points_minor=draw(st.integers(0, quantity * price)),
            )
        )
    return lines


@st.composite
def returns(draw: st.DrawFn, lines: list[StoredLine]) -> list[list[tuple[int, int]]]:
    """Any split of returning every piece of every line, in any order, over several refunds."""
    pieces = [line.line_no for line in lines for _ in range(line.quantity)]
    order = draw(st.permutations(pieces))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(order) - 1)), max_size=len(order))))
    groups = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True) if order[a:b]]
    return [sorted({(n, group.count(n)) for n in group}) for group in groups]


@given(st.data())
def test_any_sequence_of_partial_returns_adds_up_to_a_full_one(data: st.DataObject) -> None:
    lines = data.draw(sales())
    full = refund_by_lines(lines, [(line.line_no, line.quantity) for line in lines])
    state = lines
    totals = [0, 0, 0, 0]
    money = 0
    for refund in data.draw(returns(lines)):
        plan = refund_by_lines(state, refund)
        for index, value in enumerate(
            (plan.amount_minor, plan.points_reversed, plan.miles_reversed, plan.points_returned)
        ):
            assert value >= 0
            totals[index] += value
        assert 0 <= plan.money_returned_minor <= plan.amount_minor
        money += plan.money_returned_minor
        state = plan.lines
    assert money == sum(line.paid_in_money_minor for line in lines)
    assert totals == [full.amount_minor, full.points_reversed, full.miles_reversed, full.points_returned]
    assert totals[1:] == [
        sum(line.points_earned for line in lines),
        sum(line.miles_earned for line in lines),
        sum(line.points_paid for line in lines),
    ]


@given(st.data())
def test_a_return_never_reverses_more_than_its_lines_earned(data: st.DataObject) -> None:
    lines = data.draw(sales())
    state = lines
    for _ in range(data.draw(st.integers(1, 6))):
        left = sum(line.refundable_minor for line in state)
        if left == 0:
            break
        if data.draw(st.booleans()):
            plan = refund_by_amount(state, data.draw(st.integers(1, left)))
        else:
            open_lines = [line for line in state if line.refunded_quantity < line.quantity]
            if not open_lines:
                break
            line = data.draw(st.sampled_from(open_lines))
            plan = refund_by_lines(
                state, [(line.line_no, data.draw(st.integers(1, line.quantity - line.refunded_quantity)))]
            )
        state = plan.lines
        for line in state:
            assert 0 <= line.points_reversed <= line.points_earned
            assert 0 <= line.miles_reversed <= line.miles_earned
            assert 0 <= line.points_returned <= line.points_paid
            assert 0 <= line.refunded_minor <= line.amount_minor


@given(st.data())
def test_an_amount_never_reverses_less_than_returning_goods_of_that_value(data: st.DataObject) -> None:
    lines = data.draw(sales())
    returned = data.draw(st.sampled_from(lines))
    by_line = refund_by_lines(lines, [(returned.line_no, returned.quantity)])
    assume(by_line.amount_minor > 0)  # a refund by amount is of at least 1
    by_amount = refund_by_amount(lines, by_line.amount_minor)
    assert by_amount.points_reversed >= by_line.points_reversed
