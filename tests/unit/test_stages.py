"""Stages and miles periods: thresholds, the yearly reset in local time, carry-over and one-off bonuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from points.rules.stages import (
    Stage,
    StagePolicy,
    StageThreshold,
    bonus_changes,
    current_stage,
    next_period_start,
    next_stage,
    period_start,
    previous_period_start,
    stage_for_miles,
)

POLICY = StagePolicy()
TOKYO = ZoneInfo("Asia/Tokyo")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- thresholds -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("miles", "stage"),
    [
        (-10, Stage.BASIC),  # after a refund across periods; never below the first stage
        (0, Stage.BASIC),
        (4_999, Stage.BASIC),
        (5_000, Stage.SILVER),
        (19_999, Stage.SILVER),
        (20_000, Stage.GOLD),
        (49_999, Stage.GOLD),
        (50_000, Stage.PLATINUM),
        (99_999, Stage.PLATINUM),
        (100_000, Stage.DIAMOND),
        (10**9, Stage.DIAMOND),
    ],
)
def test_stage_for_miles(miles: int, stage: Stage) -> None:
    assert stage_for_miles(miles, POLICY) is stage


def test_a_program_may_skip_stages() -> None:
    policy = StagePolicy(
        thresholds=(StageThreshold(Stage.BASIC, 0, 0), StageThreshold(Stage.GOLD, 1_000, 50))
    )
    assert stage_for_miles(999, policy) is Stage.BASIC
    assert stage_for_miles(1_000, policy) is Stage.GOLD
    assert next_stage(0, policy) == (Stage.GOLD, 1_000)


# --- periods: 1 April 00:00 in Tokyo is 31 March 15:00 UTC ----------------------------------------

RESET_2026 = utc("2026-03-31T15:00:00")
RESET_2027 = utc("2027-03-31T15:00:00")
RESET_2028 = utc("2028-03-31T15:00:00")
RESET_2025 = utc("2025-03-31T15:00:00")


@pytest.mark.parametrize(
    ("at", "previous", "start", "next_start"),
    [
        (utc("2027-03-31T14:59:59"), RESET_2025, RESET_2026, RESET_2027),  # 23:59:59 on 31 March in Tokyo
        (utc("2027-03-31T15:00:00"), RESET_2026, RESET_2027, RESET_2028),  # 00:00 on 1 April in Tokyo
        (RESET_2027 - timedelta(microseconds=1), RESET_2025, RESET_2026, RESET_2027),
        (utc("2027-01-01T00:00:00"), RESET_2025, RESET_2026, RESET_2027),  # January: last April's period
        (utc("2027-12-31T23:00:00"), RESET_2026, RESET_2027, RESET_2028),  # 1 January 2028 in Tokyo
        (datetime(2027, 4, 1, 0, 0, tzinfo=TOKYO), RESET_2026, RESET_2027, RESET_2028),  # any zone in
    ],
)
def test_periods_around_the_reset_in_tokyo(
    at: datetime, previous: datetime, start: datetime, next_start: datetime
) -> None:
    assert previous_period_start(at, POLICY) == previous
    assert period_start(at, POLICY) == start
    assert next_period_start(at, POLICY) == next_start
    assert period_start(at, POLICY).tzinfo is UTC


@pytest.mark.parametrize(
    ("policy", "at", "start"),
    [
        (
            StagePolicy(reset_month=1, reset_day=1, time_zone="UTC"),
            utc("2027-01-01T00:00:00"),
            utc("2027-01-01T00:00:00"),
        ),
        (
            StagePolicy(time_zone="Europe/Berlin"),
            utc("2027-04-15T00:00:00"),
            utc("2027-03-31T22:00:00"),
        ),  # CEST
        (StagePolicy(reset_month=12, reset_day=31), utc("2027-12-30T15:00:00"), utc("2027-12-30T15:00:00")),
        (StagePolicy(reset_month=12, reset_day=31), utc("2027-12-30T14:59:59"), utc("2026-12-30T15:00:00")),
        # In Santiago clocks jumped from 00:00 to 01:00 on 8 Sept 2024: the period starts at the first
        # instant of that local day, 01:00 -03 (04:00 UTC).
        (
            StagePolicy(reset_month=9, reset_day=8, time_zone="America/Santiago"),
            utc("2024-10-01T00:00:00"),
            utc("2024-09-08T04:00:00"),
        ),
    ],
)
def test_reset_date_and_zone_are_configurable(policy: StagePolicy, at: datetime, start: datetime) -> None:
    assert period_start(at, policy) == start


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        period_start(datetime(2027, 4, 1), POLICY)  # naive on purpose


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)))
def test_every_moment_lies_in_exactly_one_year_long_period(at: datetime) -> None:
    start = period_start(at, POLICY)
    end = next_period_start(at, POLICY)
    assert start <= at < end
    assert period_start(end, POLICY) == end
    assert previous_period_start(at, POLICY) == period_start(start - timedelta(microseconds=1), POLICY)
    local_start, local_end = start.astimezone(TOKYO), end.astimezone(TOKYO)
    assert (local_start.month, local_start.day, local_start.hour) == (4, 1, 0)
    assert local_end.year == local_start.year + 1


# --- the stage is carried through the next period --------------------------------------------------


@pytest.mark.parametrize(
    ("this_period", "previous_period", "stage"),
    [
        (0, 0, Stage.BASIC),
        (0, 22_000, Stage.GOLD),  # just after the reset: kept
        (6_000, 22_000, Stage.GOLD),  # re-qualifying lower does not drop the stage this period
        (60_000, 22_000, Stage.PLATINUM),  # earning more raises it at once
        (22_000, 0, Stage.GOLD),
        (4_999, 4_999, Stage.BASIC),
    ],
)
def test_current_stage_is_the_better_of_this_and_the_previous_period(
    this_period: int, previous_period: int, stage: Stage
) -> None:
    assert current_stage(this_period, previous_period, POLICY) is stage


def test_a_member_drops_at_most_to_what_they_requalify_for_one_period_later() -> None:
    miles_by_period = {RESET_2026: 22_000, RESET_2027: 6_000, RESET_2028: 0}

    def stage_at(at: datetime) -> Stage:
        this = miles_by_period.get(period_start(at, POLICY), 0)
        previous = miles_by_period.get(previous_period_start(at, POLICY), 0)
        return current_stage(this, previous, POLICY)

    assert stage_at(RESET_2027 - timedelta(seconds=1)) is Stage.GOLD  # earned in FY2026
    assert stage_at(RESET_2027) is Stage.GOLD  # miles reset, stage kept through FY2027
    assert stage_at(RESET_2028 - timedelta(seconds=1)) is Stage.GOLD
    assert stage_at(RESET_2028) is Stage.SILVER  # FY2027's 6_000 miles
    assert stage_at(RESET_2028 + timedelta(days=366)) is Stage.BASIC


# --- one-off bonuses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("miles", "held", "grant", "take_back"),
    [
        (4_999, [], [], []),
        (5_000, [], [Stage.SILVER], []),  # reaching the threshold exactly counts
        (25_000, [], [Stage.SILVER, Stage.GOLD], []),  # two stages in one sale, each once
        (5_500, [Stage.SILVER], [], []),  # already held: never paid twice
        (4_000, [Stage.SILVER, Stage.GOLD], [], [Stage.SILVER, Stage.GOLD]),  # a return below both
        (25_000, [Stage.GOLD], [Stage.SILVER], []),
        (0, [], [], []),
        (200_000, [], [Stage.SILVER, Stage.GOLD, Stage.PLATINUM, Stage.DIAMOND], []),
    ],
)
def test_bonus_changes(miles: int, held: list[Stage], grant: list[Stage], take_back: list[Stage]) -> None:
    changes = bonus_changes(miles, held, POLICY)
    assert [threshold.stage for threshold in changes.grant] == grant
    assert changes.take_back == take_back


@given(st.lists(st.integers(-30_000, 30_000), max_size=12))
def test_the_bonuses_held_always_match_the_miles_and_are_paid_once_per_crossing(changes: list[int]) -> None:
    miles = 0
    held: list[Stage] = []
    paid = 0
    for change in changes:
        before = miles
        miles = max(0, miles + change)
        step = bonus_changes(miles, held, POLICY)
        assert not set(step.take_back) - set(held)
        assert not {t.stage for t in step.grant} & set(held)
        held = [s for s in held if s not in step.take_back] + [t.stage for t in step.grant]
        paid += sum(t.bonus_points for t in step.grant) - sum(
            t.bonus_points for t in POLICY.thresholds if t.stage in step.take_back
        )
        crossed_up = [t for t in POLICY.thresholds[1:] if before < t.miles <= miles]
        assert len(step.grant) == len(crossed_up)
    assert sorted(held, key=list(Stage).index) == [t.stage for t in POLICY.thresholds[1:] if t.miles <= miles]
    assert paid == sum(t.bonus_points for t in POLICY.thresholds if t.miles <= miles)


# --- next stage -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("miles", "expected"),
    [
        (0, (Stage.SILVER, 5_000)),
        (4_999, (Stage.SILVER, 1)),
        (5_000, (Stage.GOLD, 15_000)),
        (47_500, (Stage.PLATINUM, 2_500)),
        (99_999, (Stage.DIAMOND, 1)),
        (100_000, None),
        (250_000, None),
    ],
)
def test_next_stage_and_miles_missing(miles: int, expected: tuple[Stage, int] | None) -> None:
    assert next_stage(miles, POLICY) == expected


# --- policy validation ----------------------------------------------------------------------------

B, S, G = Stage.BASIC, Stage.SILVER, Stage.GOLD


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"thresholds": ()}, "first stage threshold must be at 0"),
        ({"thresholds": (StageThreshold(S, 100, 0),)}, "first stage threshold must be at 0"),
        ({"thresholds": (StageThreshold(B, 0, 0), StageThreshold(S, 0, 0))}, "strictly ascending"),
        (
            {"thresholds": (StageThreshold(B, 0, 0), StageThreshold(G, 10, 0), StageThreshold(S, 5, 0))},
            "strictly ascending",
        ),
        (
            {"thresholds": (StageThreshold(B, 0, 0), StageThreshold(G, 10, 0), StageThreshold(S, 20, 0))},
            "each once",
        ),
        ({"thresholds": (StageThreshold(B, 0, 0), StageThreshold(B, 10, 0))}, "each once"),
        ({"thresholds": (StageThreshold(B, 0, -1),)}, "cannot be negative"),
        ({"reset_month": 0}, "reset_month"),
        ({"reset_month": 13}, "reset_month"),
        ({"reset_month": 4, "reset_day": 31}, "does not exist"),
        ({"reset_day": 0}, "does not exist"),
        ({"reset_month": 2, "reset_day": 29}, "29 February"),
        ({"time_zone": "Tokyo"}, "IANA"),
        ({"time_zone": ""}, "IANA"),
    ],
)
def test_invalid_stage_policies_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StagePolicy(**fields)  # type: ignore[arg-type]


def test_28_february_is_a_valid_reset_date() -> None:
    policy = StagePolicy(reset_month=2, reset_day=28, time_zone="UTC")
    assert next_period_start(utc("2028-02-29T12:00:00"), policy) == utc("2029-02-28T00:00:00")
