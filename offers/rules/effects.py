"""What a clipped offer does to a sale at the register: pure, integers only.

Offers add to what the earning rules award (they do not compete with the best multiplier: the member
clipped them). Each offer's points are shared by the lines that earned them, in proportion to what those
lines paid, so a return reverses exactly the returned lines' share like any other points.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from domain.shares import split_by_weights
from offers.rules.terms import PERCENT_BASE, AmountOff, BonusPoints, Multiplier, Terms, VisitBonus


class PaidLine(msgspec.Struct, frozen=True):
    """A sale line as the offers see it: `paid_minor` is the money it paid towards points (0 when the
    line earns nothing: a non-earning category, or paid with points)."""

    line_no: int
    sku: str
    category: str
    paid_minor: int


class Rates(msgspec.Struct, frozen=True):
    points_per_unit: int
    unit_minor: int


class Effect(msgspec.Struct, frozen=True):
    points: int
    line_points: dict[int, int]  # line_no -> its share of `points`


def effect_on_sale(terms: Terms, lines: Sequence[PaidLine], total_minor: int, rates: Rates) -> Effect | None:
    """The points a points offer earns on this sale, or None when the sale does not qualify."""
    if isinstance(terms, Multiplier):
        matching = [line for line in lines if terms.category in (None, line.category)]
        paid = sum(line.paid_minor for line in matching)
        if paid <= 0 or paid < terms.min_spend_minor:
            return None
        extra = paid * (terms.percent - PERCENT_BASE) * rates.points_per_unit
        return _shared(extra // (rates.unit_minor * PERCENT_BASE), matching)
    if isinstance(terms, BonusPoints):
        matching = [line for line in lines if line.category == terms.category or line.sku == terms.sku]
        if not any(line.paid_minor > 0 for line in matching):
            return None
        return _shared(terms.points, matching)
    if isinstance(terms, VisitBonus):
        paying = [line for line in lines if line.paid_minor > 0]
        if not paying or total_minor < terms.min_spend_minor:
            return None
        return _shared(terms.points, paying)
    raise TypeError("a coupon earns no points: see coupon_applies")


def coupon_applies(terms: AmountOff, total_minor: int) -> bool:
    """The register took the discount off lines; the spend before it must reach the minimum."""
    return total_minor + terms.amount_off_minor >= terms.min_spend_minor


def _shared(points: int, lines: Sequence[PaidLine]) -> Effect | None:
    if points <= 0:
        return None
    shares = split_by_weights(points, [line.paid_minor for line in lines])
    return Effect(
        points=points,
        line_points={line.line_no: share for line, share in zip(lines, shares, strict=True) if share},
    )
