"""When each member gets a campaign's message: in their own time zone, at their best hour, never in their
quiet hours, and not too late.

Rules, as documented in docs/campaigns.md:
- A local time ("09:00 on 25 November") is that wall-clock time in each member's zone. A time the
  daylight-saving change skips (02:30 on a spring-forward night) is sent an hour later on the wall; a
  time that occurs twice is sent at its first occurrence.
- A local time already passed when the campaign is scheduled is sent at once if it passed at most
  `late` ago, else skipped (`too_late`).
- A send falling in the member's quiet hours waits for their end, unless that is past the latest moment
  the schedule allows (the best-hour window's end, else a day after the intended time): then it is
  skipped (`quiet_hours`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import msgspec

from domain.errors import RuleViolation
from domain.times import check_dates, normalise_times
from timeline.engagement import best_instant

ClockTime = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["22:00"])]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_WINDOW = timedelta(days=7)
MAX_RECURRING_SPAN = timedelta(days=366)
QUIET_WAIT_LIMIT = timedelta(days=1)


def _clock(text: str) -> time:
    return time.fromisoformat(text)


class QuietHours(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Local times no message is sent in, e.g. 22:00 to 08:00 (may run over midnight)."""

    start: ClockTime
    end: ClockTime

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise RuleViolation("quiet hours must start and end at different times")


class SendNow(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="now"):
    pass


class SendAt(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="at"):
    at: AwareDatetime

    def __post_init__(self) -> None:
        normalise_times(self, "at")


class SendAtLocalTime(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="local_time"
):
    """`time` on `date` in each member's own zone."""

    date: date
    time: ClockTime

    def __post_init__(self) -> None:
        check_dates(self, "date")


class SendAtBestHour(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="best_hour"
):
    """Each member's best hour within [window_start, window_end), at most 7 days."""

    window_start: AwareDatetime
    window_end: AwareDatetime

    def __post_init__(self) -> None:
        normalise_times(self, "window_start", "window_end")
        if not self.window_start < self.window_end <= self.window_start + MAX_WINDOW:
            raise RuleViolation("the best-hour window must end after it starts, within 7 days")


class SendRecurring(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="recurring"
):
    """Every day (or on the given weekdays) at `time` in each member's zone, from `start_date` to
    `end_date` (at most a year)."""

    time: ClockTime
    start_date: date
    end_date: date
    # One day at least (an empty list would never send); seven at most: more could only repeat a day.
    weekdays: Annotated[list[Weekday], msgspec.Meta(min_length=1, max_length=len(WEEKDAYS))] | None = None

    def __post_init__(self) -> None:
        check_dates(self, "start_date", "end_date")
        if not self.start_date <= self.end_date <= self.start_date + MAX_RECURRING_SPAN:
            raise RuleViolation("a recurring schedule ends on or after its start, within a year")
        if not self.occurrences():
            raise RuleViolation("no date from start_date to end_date falls on those weekdays")

    def occurrences(self) -> list[date]:
        days = (self.end_date - self.start_date).days + 1
        every = [self.start_date + timedelta(days=offset) for offset in range(days)]
        wanted = set(self.weekdays or WEEKDAYS)
        return [day for day in every if WEEKDAYS[day.weekday()] in wanted]


Schedule = SendNow | SendAt | SendAtLocalTime | SendAtBestHour | SendRecurring


def starts_on(schedule: Schedule, now: datetime) -> date:
    """The (UTC or local) date of a schedule's first send."""
    if isinstance(schedule, SendAt):
        return schedule.at.date()
    if isinstance(schedule, SendAtBestHour):
        return schedule.window_start.date()
    if isinstance(schedule, SendAtLocalTime):
        return schedule.date
    if isinstance(schedule, SendRecurring):
        return schedule.start_date
    return now.date()


class Plan(msgspec.Struct, frozen=True):
    """When one member's message is due, the latest it may still go, or why it is not sent."""

    due_at: datetime | None
    latest_at: datetime | None
    skipped: Literal["too_late", "quiet_hours"] | None = None


def local_instant(day: date, clock: str, time_zone: str) -> datetime:
    """`clock` on `day` in `time_zone`, in UTC (see the module docstring for skipped and repeated times)."""
    return datetime.combine(day, _clock(clock), tzinfo=ZoneInfo(time_zone)).astimezone(UTC)


def _minutes(clock: str) -> int:
    parsed = _clock(clock)
    return parsed.hour * 60 + parsed.minute


def is_quiet(at: datetime, quiet: QuietHours, time_zone: str) -> bool:
    local = at.astimezone(ZoneInfo(time_zone))
    now, start, end = local.hour * 60 + local.minute, _minutes(quiet.start), _minutes(quiet.end)
    return start <= now < end if start < end else now >= start or now < end


def quiet_ends(at: datetime, quiet: QuietHours, time_zone: str) -> datetime:
    """The end of the quiet hours `at` falls in (the next local `end` time)."""
    local = at.astimezone(ZoneInfo(time_zone))
    day = (
        local.date() if local.hour * 60 + local.minute < _minutes(quiet.end) else local.date() + timedelta(1)
    )
    return local_instant(day, quiet.end, time_zone)


def plan_delivery(
    schedule: Schedule,
    *,
    occurrence: date | None,
    time_zone: str,
    engagement: list[int],
    population: list[int],
    fallback_hour: int,
    quiet: QuietHours | None,
    late: timedelta,
    now: datetime,
) -> Plan:
    """When to send one member a campaign's message (for a recurring one, its `occurrence`)."""
    latest: datetime
    if isinstance(schedule, SendNow):
        intended, latest = now, now + QUIET_WAIT_LIMIT
    elif isinstance(schedule, SendAt):
        intended, latest = max(schedule.at, now), schedule.at + QUIET_WAIT_LIMIT
    elif isinstance(schedule, SendAtBestHour):
        if schedule.window_end <= now:
            return Plan(None, None, "too_late")
        start = max(schedule.window_start, now)
        intended = best_instant(engagement, population, start, schedule.window_end, time_zone, fallback_hour)
        latest = schedule.window_end
    else:
        day = schedule.date if isinstance(schedule, SendAtLocalTime) else occurrence
        if day is None:
            raise ValueError("a recurring schedule is planned one occurrence at a time")
        wanted = local_instant(day, schedule.time, time_zone)
        if wanted < now - late:
            return Plan(None, None, "too_late")
        intended, latest = max(wanted, now), wanted + QUIET_WAIT_LIMIT
    return outside_quiet_hours(intended, latest, quiet, time_zone)


def outside_quiet_hours(due: datetime, latest: datetime, quiet: QuietHours | None, time_zone: str) -> Plan:
    """`due`, or the end of the quiet hours it falls in, if that is not past `latest`."""
    if quiet is None or not is_quiet(due, quiet, time_zone):
        return Plan(due, latest)
    moved = quiet_ends(due, quiet, time_zone)
    return Plan(moved, latest) if moved <= latest else Plan(None, None, "quiet_hours")
