"""How many campaign messages a member may get: per calendar day and week of their own zone.

Weeks start on Monday. Transactional messages (an order is ready, a password changed) are not counted
and not capped. A campaign counts once per member, however many of their devices it reaches.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_day_and_week(at: datetime, time_zone: str) -> tuple[datetime, datetime, datetime, datetime]:
    """(day start, day end, week start, week end) around `at`, each a UTC instant of local midnight."""
    zone = ZoneInfo(time_zone)
    day = at.astimezone(zone).date()
    monday = day - timedelta(days=day.weekday())

    def midnight(local_day: date) -> datetime:
        return datetime.combine(local_day, time(0), tzinfo=zone).astimezone(UTC)

    return (
        midnight(day),
        midnight(day + timedelta(days=1)),
        midnight(monday),
        midnight(monday + timedelta(days=7)),
    )


def within_caps(sent_today: int, sent_this_week: int, max_per_day: int, max_per_week: int) -> bool:
    return sent_today < max_per_day and sent_this_week < max_per_week


def may_send(
    counted: Iterable[tuple[Hashable, datetime]],
    campaign: Hashable,
    now: datetime,
    time_zone: str,
    max_per_day: int,
    max_per_week: int,
) -> bool:
    """Whether a member may get `campaign` now, given the campaigns they already got (each with when it
    was claimed for them). A campaign they already got on another device is no new message."""
    day_start, day_end, week_start, week_end = local_day_and_week(now, time_zone)
    today: set[Hashable] = set()
    this_week: set[Hashable] = set()
    for key, claimed_at in counted:
        if key == campaign:
            return True
        if week_start <= claimed_at < week_end:
            this_week.add(key)
            if day_start <= claimed_at < day_end:
                today.add(key)
    return within_caps(len(today), len(this_week), max_per_day, max_per_week)
