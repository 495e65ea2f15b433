"""Whether a check-in is honest and what it earns (geofence.rules): pure, no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from geopy.distance import geodesic

from domain.geo import CircleFence, Point
from geofence.errors import (
    GeofenceDisabled,
    ImpossibleTravel,
    LocationInFuture,
    LocationStale,
    LocationTooInaccurate,
    MockLocation,
    OutsideGeofence,
    StoreClosed,
)
from geofence.rules import CheckInPolicy, FixIn, KnownCheckIn, StoreState, judge_check_in, reward_for
from points.rules.earning import Campaign

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
GINZA: Point = (35.6717, 139.7650)
POLICY = CheckInPolicy()
OPEN = StoreState(fence=CircleFence(center=GINZA, radius_m=100), geofence_enabled=True, open_now=True)


def away(point: Point, metres: float) -> Point:
    destination = geodesic(meters=metres).destination(point, 90)
    return destination.latitude, destination.longitude


def fix(point: Point = GINZA, at: datetime = NOW, accuracy: float = 10, mock: bool = False) -> FixIn:
    return FixIn(point=point, accuracy_m=accuracy, fix_at=at, mock_location=mock)


def known(point: Point, minutes_before: float, accuracy: float = 10) -> KnownCheckIn:
    return KnownCheckIn(point=point, fix_at=NOW - timedelta(minutes=minutes_before), accuracy_m=accuracy)


@pytest.mark.parametrize(
    ("store", "attempt", "error"),
    [
        (StoreState(fence=OPEN.fence, geofence_enabled=False, open_now=True), fix(), GeofenceDisabled),
        (StoreState(fence=OPEN.fence, geofence_enabled=True, open_now=False), fix(), StoreClosed),
        (OPEN, fix(mock=True), MockLocation),
        (OPEN, fix(accuracy=151), LocationTooInaccurate),
        (OPEN, fix(at=NOW + timedelta(seconds=31)), LocationInFuture),
        (OPEN, fix(at=NOW - timedelta(minutes=2, seconds=1)), LocationStale),
        (OPEN, fix(point=away(GINZA, 200)), OutsideGeofence),
    ],
)
def test_each_broken_rule_has_its_rejection(
    store: StoreState, attempt: FixIn, error: type[Exception]
) -> None:
    with pytest.raises(error):
        judge_check_in(POLICY, store, attempt, [], NOW)


def test_a_fix_at_the_limits_is_accepted() -> None:
    verdict = judge_check_in(POLICY, OPEN, fix(at=NOW - timedelta(minutes=2), accuracy=150), [], NOW)
    assert verdict.distance_m == 0
    assert verdict.speed_kmh is None


@pytest.mark.parametrize(
    ("neighbours", "rejected"),
    [
        ([known(away(GINZA, 400_000), 60)], True),  # Osaka an hour ago: 400 km/h
        ([known(away(GINZA, 400_000), 120)], False),  # two hours ago: 200 km/h
        # The later neighbour counts as much as the earlier one (requests may arrive out of order).
        ([known(GINZA, 60), KnownCheckIn(away(GINZA, 400_000), NOW + timedelta(minutes=30), 10)], True),
        ([known(GINZA, 0.5)], False),  # the same store moments ago
        ([KnownCheckIn(away(GINZA, 5_000), NOW, 10)], True),  # elsewhere at the very same instant
    ],
)
def test_travel_from_and_to_the_neighbouring_check_ins(
    neighbours: list[KnownCheckIn], rejected: bool
) -> None:
    if rejected:
        with pytest.raises(ImpossibleTravel):
            judge_check_in(POLICY, OPEN, fix(), neighbours, NOW)
    else:
        judge_check_in(POLICY, OPEN, fix(), neighbours, NOW)


def test_speed_is_judged_on_the_shortest_distance_the_fixes_allow() -> None:
    """Fixes 1 km apart, 10 seconds between them; 300 km/h covers 833 m in that time. With 50 m
    accuracy each the shortest distance is 900 m (too far); with 100 m and 150 m it is 750 m."""
    ten_seconds_ago = NOW - timedelta(seconds=10)
    with pytest.raises(ImpossibleTravel):
        judge_check_in(
            POLICY, OPEN, fix(accuracy=50), [KnownCheckIn(away(GINZA, 1_000), ten_seconds_ago, 50)], NOW
        )
    fuzzy = KnownCheckIn(away(GINZA, 1_000), ten_seconds_ago, 100)
    assert judge_check_in(POLICY, OPEN, fix(accuracy=150), [fuzzy], NOW).speed_kmh == pytest.approx(
        270, abs=1
    )


def test_rewards_take_the_best_multiplier_within_the_daily_cap() -> None:
    store_id = uuid.uuid4()
    campaign = Campaign(
        name="w", percent=300, starts_at=NOW - timedelta(days=1), ends_at=NOW + timedelta(days=1)
    )
    policy = CheckInPolicy(store_percent={store_id: 200}, campaigns=(campaign,))
    assert reward_for(policy, store_id, NOW, 0, member_flagged=False).miles == 60
    assert reward_for(policy, store_id, NOW, 5, member_flagged=False).withheld == "daily_cap_reached"
    assert reward_for(policy, store_id, NOW, 0, member_flagged=True).withheld == "flagged_for_review"
