"""What a return reverses, line by line: money, points earned, miles, and points that paid for the goods.

A sale keeps, per line, what the line earned (`points_earned`, `miles_earned`), what points paid for it
(`points_paid`, worth `paid_with_points_minor`; the rest was paid in money), and how much of each was
returned so far. Each refund moves a line's cumulative share: after returning goods worth `r` of a line
worth `A`, the line has given back `floor(x * r / A)` of each figure `x` (all of `x` once `r == A`): points
and miles earned, points that paid, and the money paid. So several partial returns add up exactly to a
full one, a return never reverses more than its lines earned, and the money handed back never exceeds
the money paid. A line worth nothing uses its quantities instead.

- **By lines** (`line_no`, `quantity`): the money returned is the line's quantity share, cumulatively
  (`floor(A * q / Q)`), never more than what is left of the line.
- **By amount** (no lines named): the amount is taken from the lines that earned the most points per yen
  first (then miles per yen, then line number), each up to what is left of it. An amount therefore never
  reverses less than returning goods of that value by line would: a return cannot be posted "by amount"
  to keep the points of the earning item while the money comes off a gift voucher.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

import msgspec

from points.errors import DuplicateLine, RefundExceedsSale, UnknownLine
from points.rules.earning import SaleLine


class StoredLine(SaleLine, frozen=True, kw_only=True):
    """A sale's line as kept with the sale: what was sold, what it earned, and what was returned."""

    points_earned: int = 0
    miles_earned: int = 0
    points_paid: int = 0
    paid_with_points_minor: int = 0
    refunded_quantity: int = 0
    refunded_minor: int = 0
    points_reversed: int = 0
    miles_reversed: int = 0
    points_returned: int = 0
    money_returned_minor: int = 0

    @property
    def paid_in_money_minor(self) -> int:
        return self.amount_minor - self.paid_with_points_minor

    @property
    def refundable_minor(self) -> int:
        return self.amount_minor - self.refunded_minor


class LineRefund(msgspec.Struct, frozen=True):
    """What one refund did to one line."""

    line_no: int
    quantity: int
    amount_minor: int
    points_reversed: int
    miles_reversed: int
    points_returned: int
    money_returned_minor: int


class RefundPlan(msgspec.Struct, frozen=True):
    lines: list[StoredLine]  # every line of the sale, as it stands after the refund
    changes: list[LineRefund]  # the lines this refund touched
    amount_minor: int
    points_reversed: int
    miles_reversed: int
    points_returned: int
    money_returned_minor: int  # the part of `amount_minor` handed back in money (the rest as points)


def cumulative_share(total: int, part: int, whole: int) -> int:
    """`floor(total * part / whole)`, exactly `total` once `part == whole` (also for a zero `whole`)."""
    if not 0 <= part <= whole or total < 0:
        raise ValueError("need 0 <= part <= whole and a non-negative total")
    return total if part == whole else total * part // whole


def refund_by_lines(lines: Sequence[StoredLine], returned: Sequence[tuple[int, int]]) -> RefundPlan:
    """Return `quantity` of each `line_no` listed; the rest of the sale is unchanged."""
    by_line = {line.line_no: line for line in lines}
    quantities: dict[int, int] = {}
    for line_no, quantity in returned:
        if line_no in quantities:
            raise DuplicateLine(line_no=line_no)
        if line_no not in by_line:
            raise UnknownLine(line_no=line_no)
        line = by_line[line_no]
        if line.refunded_quantity + quantity > line.quantity:
            raise RefundExceedsSale(
                f"line {line_no}: {line.quantity - line.refunded_quantity} left to return",
                line_no=line_no,
            )
        quantities[line_no] = quantity
    money = {}
    for line_no, quantity in quantities.items():
        line = by_line[line_no]
        by_quantity = cumulative_share(
            line.amount_minor, line.refunded_quantity + quantity, line.quantity
        ) - cumulative_share(line.amount_minor, line.refunded_quantity, line.quantity)
        money[line_no] = min(by_quantity, line.refundable_minor)
    return _plan(lines, money, quantities)


def refund_by_amount(lines: Sequence[StoredLine], amount_minor: int) -> RefundPlan:
    """Return `amount_minor` of the sale, taken from the best-earning lines first (see the module)."""
    refundable = sum(line.refundable_minor for line in lines)
    if amount_minor > refundable:
        raise RefundExceedsSale(refundable_minor=refundable)
    money: dict[int, int] = {}
    left = amount_minor
    for line in sorted(lines, key=_best_earning_first):
        money[line.line_no] = min(left, line.refundable_minor)
        left -= money[line.line_no]
    return _plan(lines, money, {})


def _best_earning_first(line: StoredLine) -> tuple[Fraction, Fraction, int]:
    if line.amount_minor == 0:
        return Fraction(0), Fraction(0), line.line_no
    return (
        -Fraction(line.points_earned, line.amount_minor),
        -Fraction(line.miles_earned, line.amount_minor),
        line.line_no,
    )


def _plan(lines: Sequence[StoredLine], money: Mapping[int, int], quantities: Mapping[int, int]) -> RefundPlan:
    after: list[StoredLine] = []
    changes: list[LineRefund] = []
    for line in lines:
        amount, quantity = money.get(line.line_no, 0), quantities.get(line.line_no, 0)
        if amount == 0 and quantity == 0:
            after.append(line)
            continue
        updated = _returned(line, amount, quantity)
        after.append(updated)
        changes.append(
            LineRefund(
                line_no=line.line_no,
                quantity=quantity,
                amount_minor=amount,
                points_reversed=updated.points_reversed - line.points_reversed,
                miles_reversed=updated.miles_reversed - line.miles_reversed,
                points_returned=updated.points_returned - line.points_returned,
                money_returned_minor=updated.money_returned_minor - line.money_returned_minor,
            )
        )
    return RefundPlan(
        lines=after,
        changes=changes,
        amount_minor=sum(change.amount_minor for change in changes),
        points_reversed=sum(change.points_reversed for change in changes),
        miles_reversed=sum(change.miles_reversed for change in changes),
        points_returned=sum(change.points_returned for change in changes),
        money_returned_minor=sum(change.money_returned_minor for change in changes),
    )


def _returned(line: StoredLine, amount: int, quantity: int) -> StoredLine:
    refunded_minor = line.refunded_minor + amount
    refunded_quantity = line.refunded_quantity + quantity
    part, whole = (
        (refunded_minor, line.amount_minor) if line.amount_minor else (refunded_quantity, line.quantity)
    )
    # Never below what the line already gave back: sales recorded before lines kept their own figures
    # were reversed in proportion to the whole receipt, so such a line may be ahead of its share.
    return msgspec.structs.replace(
        line,
        refunded_quantity=refunded_quantity,
        refunded_minor=refunded_minor,
        points_reversed=max(line.points_reversed, cumulative_share(line.points_earned, part, whole)),
        miles_reversed=max(line.miles_reversed, cumulative_share(line.miles_earned, part, whole)),
        points_returned=max(line.points_returned, cumulative_share(line.points_paid, part, whole)),
        money_returned_minor=max(
            line.money_returned_minor, cumulative_share(line.paid_in_money_minor, part, whole)
        ),
    )
