"""Whether a check-in is honest, and what it earns: pure decisions over plain values and the time."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import msgspec

from domain.geo import CircleFence, Point, PolygonFence, distance_m, within_fence
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
from points.rules.earning import Campaign


class Trigger(StrEnum):
    USER_TAP = "user_tap"
    GEOFENCE_ENTER = "geofence_enter"
    GEOFENCE_DWELL = "geofence_dwell"


class CheckInPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Configured with `TSUNAGARI_CHECK_IN_POLICY` (JSON); omitted fields keep these defaults."""

    worst_accuracy_m: int = 150  # a fix less accurate than this is refused outright
    accuracy_allowance_m: int = 50  # at most this far outside the fence, when the fix's accuracy reaches it
    max_fix_age: timedelta = timedelta(minutes=2)
    max_fix_ahead: timedelta = timedelta(seconds=30)  # phone clocks run a little fast
    max_speed_kmh: int = 300  # the Shinkansen plus a margin
    attempts_per_hour: int = 30  # beyond this an attempt is refused (429) without being recorded
    recorded_rejections_per_day: int = 20  # rejections kept for fraud review per member per 24 hours
    miles: int = 20  # per rewarded check-in (MUJI style)
    points: int = 0
    store_percent: dict[uuid.UUID, int] = msgspec.field(default_factory=dict)
    campaigns: tuple[Campaign, ...] = ()
    rewarded_stores_per_day: int = 5


def load_check_in_policy(text: str | None) -> CheckInPolicy:
    """The policy from its JSON text (`TSUNAGARI_CHECK_IN_POLICY`); ValueError names the bad field."""
    if not text:
        return CheckInPolicy()
    try:
        return msgspec.json.decode(text, type=CheckInPolicy)
    except msgspec.ValidationError as error:
        raise ValueError(f"TSUNAGARI_CHECK_IN_POLICY: {error}") from error


class FixIn(msgspec.Struct, frozen=True):
    point: Point
    accuracy_m: float
    fix_at: datetime
    mock_location: bool


class KnownCheckIn(msgspec.Struct, frozen=True):
    """An accepted check-in of the same member, before or after the one being judged (by fix time)."""

    point: Point
    fix_at: datetime
    accuracy_m: float


class StoreState(msgspec.Struct, frozen=True):
    fence: CircleFence | PolygonFence
    geofence_enabled: bool
    open_now: bool


class Verdict(msgspec.Struct, frozen=True):
    distance_m: float  # from the fence; 0 inside
    speed_kmh: float | None  # the fastest travel to or from a neighbouring check-in, when there is one


def judge_check_in(
    policy: CheckInPolicy,
    store: StoreState,
    fix: FixIn,
    neighbours: Sequence[KnownCheckIn],
    now: datetime,
) -> Verdict:
    """The accepted check-in's measurements, or the first rule it breaks (raised, with the evidence).

    `neighbours` are the member's accepted check-ins just before and just after this fix in time: the
    travel to this one from the first and from this one to the second must both be possible. (Only
    comparing with the latest one before would let two requests, the later-sent one timed earlier, pass
    as two separate journeys.) Speeds use the devices' fix times, not the server's clock.
    """
    if not store.geofence_enabled:
        raise GeofenceDisabled()
    if not store.open_now:
        raise StoreClosed()
    if fix.mock_location:
        raise MockLocation()
    if fix.accuracy_m > policy.worst_accuracy_m:
        raise LocationTooInaccurate(accuracy_m=fix.accuracy_m, worst_accepted_m=policy.worst_accuracy_m)
    if fix.fix_at > now + policy.max_fix_ahead:
        raise LocationInFuture()
    if fix.fix_at < now - policy.max_fix_age:
        raise LocationStale(max_age_s=int(policy.max_fix_age.total_seconds()))
    inside, distance = within_fence(store.fence, fix.point, fix.accuracy_m, policy.accuracy_allowance_m)
    if not inside:
        raise OutsideGeofence(distance_m=round(distance))
    speeds = [(speed_kmh(neighbour, fix), neighbour) for neighbour in neighbours]
    fastest = max(speeds, key=lambda pair: pair[0], default=None)
    if fastest is not None and fastest[0] > policy.max_speed_kmh:
        speed, neighbour = fastest
        raise ImpossibleTravel(
            speed_kmh=round(min(speed, 1e9)),
            max_speed_kmh=policy.max_speed_kmh,
            other={
                "latitude": neighbour.point[0],
                "longitude": neighbour.point[1],
                "fix_at": neighbour.fix_at.isoformat(),
            },
        )
    return Verdict(distance_m=distance, speed_kmh=fastest[0] if fastest else None)


def speed_kmh(other: KnownCheckIn, fix: FixIn) -> float:
    """The least speed needed between another check-in and this fix: over the shortest distance their
    accuracy circles allow (an honest member at two neighbouring stores is not judged on fuzzy fixes),
    in the time between their fixes; infinite for a jump with no time between."""
    metres = max(0.0, distance_m(other.point, fix.point) - other.accuracy_m - fix.accuracy_m)
    seconds = abs((fix.fix_at - other.fix_at).total_seconds())
    if seconds == 0:
        return 0.0 if metres < 1 else float("inf")
    return metres / seconds * 3.6


def local_day(at: datetime, time_zone: str) -> date:
    """The store's calendar day at `at`: "once per day" follows the store's clock, not UTC's."""
    return at.astimezone(ZoneInfo(time_zone)).date()


class Reward(msgspec.Struct, frozen=True):
    points: int
    miles: int
    percent: int
    withheld: str | None  # why nothing was awarded, when nothing was


def reward_for(
    policy: CheckInPolicy, store_id: uuid.UUID, at: datetime, rewarded_today: int, member_flagged: bool
) -> Reward:
    """Miles and points for an accepted check-in: the best of store and campaign multipliers (no stacking),
    nothing past the daily cap of rewarded stores or for a member flagged by fraud review."""
    if member_flagged:
        return Reward(0, 0, 0, "flagged_for_review")
    if rewarded_today >= policy.rewarded_stores_per_day:
        return Reward(0, 0, 0, "daily_cap_reached")
    candidates = [100, policy.store_percent.get(store_id, 100)]
    candidates += [c.percent for c in policy.campaigns if c.applies(None, store_id, at)]
    percent = max(candidates)
    return Reward(policy.points * percent // 100, policy.miles * percent // 100, percent, None)
