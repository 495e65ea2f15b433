"""Times from outside the service: normalised to UTC and bounded before anything else sees them.

A client may send any RFC 3339 offset (`+09:00`, `-05:00`); keeping that offset would make `.date()` and
`.hour` answer in the client's zone instead of UTC, so every time is converted once, at the boundary.
Absolute bounds come first, on the year as written (a year 9999 would overflow on conversion, nothing
here happens before 2000 or after 2100, and a bound on the text is one the OpenAPI can state as a
pattern); each use case then applies its own window relative to now (`is_within`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import msgspec

from domain.errors import RuleViolation

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
WRITTEN_YEARS = r"^20[0-9]{2}-"  # how an RFC 3339 time or date in [EARLIEST, LATEST) starts (for the OpenAPI)


def to_utc(at: datetime) -> datetime:
    """`at` as a UTC datetime in [EARLIEST, LATEST). ValueError for a naive time or one written outside the
    years 2000-2099 (what the OpenAPI's pattern says); RuleViolation for one written inside them whose UTC
    instant is not (the first or last hours of the century, by its offset), a rule no pattern can state.
    Bounding the UTC instant keeps every stored time a valid input again when it is read back."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a time needs a UTC offset (e.g. 2026-11-23T10:15:00+09:00 or ...Z)")
    if not EARLIEST.year <= at.year < LATEST.year:
        raise ValueError(f"the time must be between {EARLIEST:%Y} and {LATEST:%Y}")
    utc = at.astimezone(UTC)
    if not EARLIEST <= utc < LATEST:
        raise RuleViolation(f"the time must be between {EARLIEST:%Y} and {LATEST:%Y} in UTC too")
    return utc


def normalise_times(struct: msgspec.Struct, *fields: str) -> None:
    """Replace the named datetime fields of a (frozen) request struct by their UTC form.

    Meant for `__post_init__`, where msgspec turns the ValueError into a validation error naming the body.
    """
    for field in fields:
        value = getattr(struct, field)
        if value is not None:
            try:
                msgspec.structs.force_setattr(struct, field, to_utc(value))
            except ValueError as error:
                raise type(error)(f"{field}: {error}") from error


def check_dates(struct: msgspec.Struct, *fields: str) -> None:
    """Refuse calendar dates outside [2000, 2100) in the named fields (for `__post_init__`): date
    arithmetic near year 9999 overflows."""
    for field in fields:
        value: date | None = getattr(struct, field)
        if value is not None and not EARLIEST.date() <= value < LATEST.date():
            raise ValueError(f"{field}: the date must be between {EARLIEST:%Y} and {LATEST:%Y}")


def is_within(at: datetime, now: datetime, max_age: timedelta, max_ahead: timedelta) -> bool:
    """Whether `at` lies in [now - max_age, now + max_ahead]: the window a use case accepts."""
    return now - max_age <= at <= now + max_ahead
