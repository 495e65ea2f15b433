"""Whether a sale or a return can be recorded as the register sent it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from domain.times import is_within
from points.errors import (
    CurrencyNotSupported,
    DuplicateLine,
    RedemptionExceedsTotal,
    RedemptionNeedsMember,
    RefundTimeOutOfRange,
    SaleTimeOutOfRange,
    TotalMismatch,
)
from points.program import Program
from points.rules.earning import SaleLine

# Registers' clocks run a little fast; a sale or return "in the future" by more than this is refused.
CLOCK_AHEAD = timedelta(minutes=5)


def check_sale(
    program: Program,
    *,
    currency: str,
    sold_at: datetime,
    total_minor: int,
    lines: Sequence[SaleLine],
    points_to_redeem: int,
    with_member: bool,
    now: datetime,
) -> None:
    """Refuse a sale that does not add up or cannot be recorded now (each with its own code)."""
    if currency != program.currency:
        raise CurrencyNotSupported(f"this program runs in {program.currency}")
    if not is_within(sold_at, now, timedelta(days=program.late_posting_max_days), CLOCK_AHEAD):
        raise SaleTimeOutOfRange(f"sold_at must be within the last {program.late_posting_max_days} days")
    seen: set[int] = set()
    for line in lines:
        if line.line_no in seen:
            raise DuplicateLine(line_no=line.line_no)
        seen.add(line.line_no)
    if sum(line.amount_minor for line in lines) != total_minor:
        raise TotalMismatch()
    if points_to_redeem and not with_member:
        raise RedemptionNeedsMember()
    if points_to_redeem * program.earning.point_value_minor > total_minor:
        raise RedemptionExceedsTotal()


def check_refund_time(program: Program, refunded_at: datetime, sold_at: datetime, now: datetime) -> None:
    """A return happens after its sale (give or take a register clock), not in the future, and is
    posted within the same late-posting window as sales: its time becomes the timeline's."""
    late = timedelta(days=program.late_posting_max_days)
    if not is_within(refunded_at, now, late, CLOCK_AHEAD) or refunded_at < sold_at - CLOCK_AHEAD:
        raise RefundTimeOutOfRange(
            f"refunded_at must be after the sale and within the last {program.late_posting_max_days} days"
        )
