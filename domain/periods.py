"""Reporting periods: a half-open range of instants `[start, end)`, read as local calendar days.

The console's figures (points, interactions) are per local day in one zone (the program's): a day there
is not a UTC day, and around a daylight-saving change it is not 24 hours long, so the days of a period
are computed here once, from the zone's calendar, and every series lists every one of them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from domain.errors import InvalidInput
from domain.time_zones import checked_time_zone
from domain.times import to_utc

MAX_PERIOD_DAYS = 400  # a year and a bit: a year-on-year chart, and no query over all history


class InvalidPeriod(InvalidInput):
    code = "invalid_period"
    title = "The period must start before it ends, with UTC offsets, and span at most 400 days"


def checked_period(start: datetime, end: datetime, time_zone: str) -> tuple[datetime, datetime]:
    """`start` and `end` in UTC, once they make a period the console may ask about; else InvalidPeriod
    (or InvalidTimeZone for a zone that is not an IANA name)."""
    checked_time_zone(time_zone)
    try:
        start, end = to_utc(start), to_utc(end)
    except ValueError as error:
        raise InvalidPeriod(str(error)) from error
    if start >= end:
        raise InvalidPeriod("the period must start before it ends")
    if end - start > timedelta(days=MAX_PERIOD_DAYS):
        raise InvalidPeriod(f"the period may span at most {MAX_PERIOD_DAYS} days")
    return start, end


def local_day(at: datetime, time_zone: str) -> date:
    return at.astimezone(ZoneInfo(time_zone)).date()


def local_days(start: datetime, end: datetime, time_zone: str) -> list[date]:
    """Every local calendar day that holds an instant of `[start, end)`, in order."""
    first = local_day(start, time_zone)
    last = local_day(end - timedelta(microseconds=1), time_zone)
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def day_starts(start: datetime, end: datetime, time_zone: str) -> list[datetime]:
    """Where each of `local_days` begins within `[start, end)`, as UTC instants: `start`, then each later
    local midnight (the first instant of the day where a daylight-saving change skips midnight).

    The instant `t` falls on day `i` (0-based) of `local_days` when `starts[i] <= t < starts[i + 1]`:
    SQL finds `i + 1` with `width_bucket(t, starts)`, without converting every row to local time.
    """
    zone = ZoneInfo(time_zone)
    midnights = [
        datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        for day in local_days(start, end, time_zone)[1:]
    ]
    return [start.astimezone(UTC), *midnights]
