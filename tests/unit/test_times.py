"""Times from clients: the bound the server applies is the one the OpenAPI's pattern states."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import RuleViolation
from domain.times import EARLIEST, LATEST, WRITTEN_YEARS, to_utc

OFFSETS = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(at=st.datetimes(timezones=OFFSETS))
def test_a_time_written_outside_the_published_pattern_is_refused_as_malformed(at: datetime) -> None:
    """Whatever the text the pattern refuses is a plain ValueError (400); what it allows is either
    accepted or, in UTC outside the years, a RuleViolation (422): never refused as malformed."""
    matches = re.match(WRITTEN_YEARS, at.isoformat()) is not None
    try:
        utc = to_utc(at)
    except RuleViolation:
        assert matches
    except ValueError:
        assert not matches
    else:
        assert matches
        assert EARLIEST <= utc < LATEST


@pytest.mark.parametrize(
    "written", ["2000-01-01T00:30:00+09:00", "2099-12-31T23:00:00-05:00", "2099-12-31T23:59:59.999999-00:01"]
)
def test_a_time_written_inside_the_years_but_outside_them_in_utc_breaks_a_rule(written: str) -> None:
    with pytest.raises(RuleViolation, match="in UTC too"):
        to_utc(datetime.fromisoformat(written))


@pytest.mark.parametrize(
    ("written", "utc"),
    [
        ("2000-01-01T00:30:00-09:00", datetime(2000, 1, 1, 9, 30, tzinfo=UTC)),
        ("2099-12-31T23:00:00+05:00", datetime(2099, 12, 31, 18, 0, tzinfo=UTC)),
    ],
)
def test_times_near_the_edges_inside_in_utc_are_converted(written: str, utc: datetime) -> None:
    assert to_utc(datetime.fromisoformat(written)) == utc


@pytest.mark.parametrize("written", ["1999-12-31T23:59:59+00:00", "2100-01-01T00:00:00+00:00"])
def test_years_outside_are_refused(written: str) -> None:
    with pytest.raises(ValueError, match="between 2000 and 2100"):
        to_utc(datetime.fromisoformat(written))
