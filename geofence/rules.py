"""Whether a check-in is honest, and what it earns: pure decisions over plain values and the time."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import msgspec

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
from geofence.geometry import CircleFence, Point, PolygonFence, distance_m, within_fence
from points.rules import Campaign


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
    attempts_per_hour: int = 30
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


class PreviousCheckIn(msgspec.Struct, frozen=True):
    point: Point
    fix_at: datetime


class StoreState(msgspec.Struct, frozen=True):
    fence: CircleFence | PolygonFence
    geofence_enabled: bool
    open_now: bool


class Verdict(msgspec.Struct, frozen=True):
    distance_m: float  # from the fence; 0 inside
    speed_kmh: float | None  # from the previous check-in, when there is one


def judge_check_in(
    policy: CheckInPolicy, store: StoreState, fix: FixIn, previous: PreviousCheckIn | None, now: datetime
) -> Verdict:
    """The accepted check-in's measurements, or the first rule it breaks (raised, with the evidence)."""
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
    speed = None if previous is None else speed_kmh(previous, fix)
    if speed is not None and speed > policy.max_speed_kmh:
        raise ImpossibleTravel(speed_kmh=round(speed), max_speed_kmh=policy.max_speed_kmh)
    return Verdict(distance_m=distance, speed_kmh=speed)


def speed_kmh(previous: PreviousCheckIn, fix: FixIn) -> float:
    """Speed needed to get from the previous check-in here; infinite for a jump with no time between."""
    metres = distance_m(previous.point, fix.point)
    seconds = abs((fix.fix_at - previous.fix_at).total_seconds())
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
