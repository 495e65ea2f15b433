"""The pure parts of the console's figures: reporting periods as local days, and member search input."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from accounts.rules import like_prefix, typed_card_number
from domain.periods import InvalidPeriod, checked_period, day_starts, local_day, local_days
from domain.time_zones import InvalidTimeZone

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
FULL_WIDTH = str.maketrans("0123456789 ", "".join(chr(0xFF10 + digit) for digit in range(10)) + "\u3000")


def test_a_period_of_whole_local_days_lists_each_day_once() -> None:
    start = datetime(2026, 11, 1, tzinfo=TOKYO)
    assert local_days(start, start + timedelta(days=3), "Asia/Tokyo") == [
        date(2026, 11, 1),
        date(2026, 11, 2),
        date(2026, 11, 3),
    ]


def test_a_period_ending_just_after_midnight_includes_that_day() -> None:
    start = datetime(2026, 11, 1, 23, 0, tzinfo=TOKYO)
    end = datetime(2026, 11, 2, 0, 0, 1, tzinfo=TOKYO)
    assert local_days(start, end, "Asia/Tokyo") == [date(2026, 11, 1), date(2026, 11, 2)]


def test_local_days_follow_the_zone_not_utc() -> None:
    # 15:00-16:00 UTC is the next day in Tokyo (UTC+9) and the same day in New York.
    start = datetime(2026, 11, 1, 15, 0, tzinfo=UTC)
    end = start + timedelta(hours=1)
    assert local_days(start, end, "Asia/Tokyo") == [date(2026, 11, 2)]
    assert local_days(start, end, "America/New_York") == [date(2026, 11, 1)]


def test_a_daylight_saving_day_of_25_hours_is_one_day() -> None:
    start = datetime(2026, 11, 1, tzinfo=NEW_YORK)  # clocks go back this day: it lasts 25 hours
    end = datetime(2026, 11, 2, tzinfo=NEW_YORK)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)
    assert local_days(start, end, "America/New_York") == [date(2026, 11, 1)]


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Asia/Tokyo", datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        ("America/New_York", datetime(2026, 10, 30, 7, 0, tzinfo=UTC)),  # over the change back
        ("America/New_York", datetime(2026, 3, 6, 7, 0, tzinfo=UTC)),  # over the change forward
        ("America/Santiago", datetime(2026, 9, 4, 12, 0, tzinfo=UTC)),  # midnight skipped on 6 September
        ("Asia/Kolkata", datetime(2026, 11, 1, 20, 0, tzinfo=UTC)),  # UTC+5:30
    ],
)
def test_day_starts_split_a_period_exactly_where_its_local_days_change(zone: str, start: datetime) -> None:
    end = start + timedelta(days=4, hours=5)
    days, starts = local_days(start, end, zone), day_starts(start, end, zone)
    assert len(starts) == len(days)
    assert starts[0] == start
    assert all(later > earlier for earlier, later in itertools.pairwise(starts))
    for index, begins in enumerate(starts):
        assert begins.tzinfo is UTC
        assert local_day(begins, zone) == days[index]
        if index:
            assert local_day(begins - timedelta(microseconds=1), zone) == days[index - 1]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)),  # backwards
        (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)),  # empty
        (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),  # longer than 400 days
        (datetime(2026, 11, 1), datetime(2026, 11, 2, tzinfo=UTC)),  # no offset
    ],
)
def test_unusable_periods_are_refused(start: datetime, end: datetime) -> None:
    with pytest.raises(InvalidPeriod):
        checked_period(start, end, "Asia/Tokyo")


def test_a_period_comes_back_in_utc_and_its_zone_must_exist() -> None:
    start, end = checked_period(
        datetime(2026, 11, 1, tzinfo=TOKYO), datetime(2026, 11, 2, tzinfo=TOKYO), "Asia/Tokyo"
    )
    assert (start, end) == (datetime(2026, 10, 31, 15, tzinfo=UTC), datetime(2026, 11, 1, 15, tzinfo=UTC))
    assert start.tzinfo is UTC
    with pytest.raises(InvalidTimeZone):
        checked_period(start, end, "Tokyo")


@pytest.mark.parametrize(
    "typed",
    [
        "2123456789012345",
        "2123 4567 8901 2345",
        "2123-4567-8901-2345",
        " 2123 - 4567 - 8901 - 2345 ",
        "2123 4567 8901 2345".translate(FULL_WIDTH),  # as a Japanese input method may type it
        "2123\u20104567\u20108901\u20102345",  # typographic hyphens
    ],
)
def test_a_card_number_is_read_as_printed_or_typed(typed: str) -> None:
    assert typed_card_number(typed) == "2123456789012345"


@pytest.mark.parametrize(
    "typed", ["212345678901234", "21234567890123456", "2123 4567 8901 234x", "hanako@example.jp", ""]
)
def test_anything_but_sixteen_digits_is_not_a_card_number(typed: str) -> None:
    assert typed_card_number(typed) is None


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("hanako", "hanako%"),
        ("100%", "100\\%%"),
        ("a_b", "a\\_b%"),
        ("back\\slash", "back\\\\slash%"),
    ],
)
def test_like_prefixes_take_wildcards_literally(text: str, pattern: str) -> None:
    assert like_prefix(text) == pattern
