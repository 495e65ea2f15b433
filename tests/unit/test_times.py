"""Times from clients: the bound the server applies is the one the OpenAPI's pattern states."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.times import WRITTEN_YEARS, to_utc

OFFSETS = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(at=st.datetimes(timezones=OFFSETS))
def test_a_time_is_accepted_exactly_when_its_text_matches_the_published_pattern(at: datetime) -> None:
    matches = re.match(WRITTEN_YEARS, at.isoformat()) is not None
    try:
        to_utc(at)
    except ValueError:
        assert not matches
    else:
        assert matches


@pytest.mark.parametrize(
    ("written", "utc"),
    [
        ("2000-01-01T00:30:00+09:00", datetime(1999, 12, 31, 15, 30, tzinfo=UTC)),
        ("2099-12-31T23:00:00-05:00", datetime(2100, 1, 1, 4, 0, tzinfo=UTC)),
    ],
)
def test_the_edges_are_judged_as_written_then_converted(written: str, utc: datetime) -> None:
    assert to_utc(datetime.fromisoformat(written)) == utc


@pytest.mark.parametrize("written", ["1999-12-31T23:59:59+00:00", "2100-01-01T00:00:00+00:00"])
def test_years_outside_are_refused(written: str) -> None:
    with pytest.raises(ValueError, match="between 2000 and 2100"):
        to_utc(datetime.fromisoformat(written))
