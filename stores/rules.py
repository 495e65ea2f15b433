"""Store rules that need no I/O."""

from __future__ import annotations

from enum import StrEnum

MIN_CHECK_IN_RADIUS_M = 50
MAX_CHECK_IN_RADIUS_M = 5000
DEFAULT_CHECK_IN_RADIUS_M = 100


class StoreStatus(StrEnum):
    OPEN = "open"
    TEMPORARILY_CLOSED = "temporarily_closed"
    CLOSED = "closed"


def accepts_pos_requests(status: StoreStatus, archived: bool, terminal_disabled: bool) -> bool:
    """A temporarily closed store still runs back-office POS work (refunds, stock-taking sales)."""
    return not archived and not terminal_disabled and status is not StoreStatus.CLOSED
