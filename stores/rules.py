"""Store rules that need no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

MIN_CHECK_IN_RADIUS_M = 50
MAX_CHECK_IN_RADIUS_M = 5000
DEFAULT_CHECK_IN_RADIUS_M = 100


class StoreStatus(StrEnum):
    OPEN = "open"
    TEMPORARILY_CLOSED = "temporarily_closed"
    CLOSED = "closed"


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OpeningHours = Mapping[str, Sequence[Sequence[str]]]  # weekday -> [("10:00", "21:00"), ...], local time


def check_opening_hours(hours: OpeningHours) -> OpeningHours:
    """ValueError unless every weekday key is known and each interval is HH:MM to a later HH:MM."""
    for day, intervals in hours.items():
        if day not in WEEKDAYS:
            raise ValueError(f"unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
        for opens, closes in intervals:
            if time.fromisoformat(opens) >= time.fromisoformat(closes):  # validated HH:MM by the schema
                raise ValueError(f"{day}: {opens}-{closes} must close after it opens (same day)")
    return hours


def is_open_at(status: StoreStatus, hours: OpeningHours | None, time_zone: str, at: datetime) -> bool:
    """Open when the status says so and, if hours are set, `at` falls in one of the day's intervals."""
    if status is not StoreStatus.OPEN:
        return False
    if not hours:
        return True
    local = at.astimezone(ZoneInfo(time_zone))
    now = local.time()
    return any(
        time.fromisoformat(opens) <= now < time.fromisoformat(closes)
        for opens, closes in hours.get(WEEKDAYS[local.weekday()], [])
    )


def accepts_pos_requests(status: StoreStatus, archived: bool, terminal_disabled: bool) -> bool:
    """A temporarily closed store still runs back-office POS work (refunds, stock-taking sales)."""
    return not archived and not terminal_disabled and status is not StoreStatus.CLOSED
