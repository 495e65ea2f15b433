"""The clock is passed in, so rules and services can be run at any moment in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


# Runtime-checkable because litestar validates injected dependencies against their annotation.
@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SettableClock:
    """A clock that stands still until moved: for tests and replays of past days. Always answers in UTC,
    whatever zone it was set in, like the system clock."""

    def __init__(self, at: datetime) -> None:
        self._at = _utc(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = _utc(at)

    def advance(self, by: timedelta) -> None:
        self._at += by


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("SettableClock needs a timezone-aware datetime")
    return at.astimezone(UTC)
