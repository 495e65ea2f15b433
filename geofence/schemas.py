"""Request and response bodies of the store-finder, check-in and fraud review endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec

from domain.times import normalise_times
from geofence.rules import Trigger

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]


class NearbyStore(msgspec.Struct, frozen=True):
    store_id: uuid.UUID
    code: str
    name: str
    address: str
    latitude: float
    longitude: float
    distance_m: int
    open_now: bool
    check_in_radius_m: int


class NearbyStores(msgspec.Struct, frozen=True):
    items: list[NearbyStore]


class Region(msgspec.Struct, frozen=True):
    store_id: uuid.UUID
    latitude: float
    longitude: float
    radius_m: int


class RegionSet(msgspec.Struct, frozen=True):
    """The stores to register as OS geofences, and how far the member may move before asking again."""

    regions: list[Region]
    refresh_after_moving_m: int


class Integrity(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    mock_location: bool = False


class CheckInRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    store_id: uuid.UUID
    latitude: Latitude
    longitude: Longitude
    accuracy_m: Annotated[float, msgspec.Meta(ge=0, le=100_000)]
    fix_at: AwareDatetime
    trigger: Trigger
    integrity: Integrity = Integrity()

    def __post_init__(self) -> None:
        normalise_times(self, "fix_at")


class CheckInResult(msgspec.Struct, frozen=True):
    check_in_id: uuid.UUID
    store_id: uuid.UUID
    local_day: date
    checked_in_at: datetime
    duplicate: bool  # true: the store's check-in for this day already existed; this is it
    points_awarded: int
    miles_awarded: int
    reward_withheld: str | None  # daily_cap_reached, flagged_for_review


class TravelPair(msgspec.Struct, frozen=True):
    from_latitude: float
    from_longitude: float
    from_at: datetime
    to_latitude: float
    to_longitude: float
    to_at: datetime
    speed_kmh: int


class SuspiciousMember(msgspec.Struct, frozen=True):
    member_id: uuid.UUID
    rejections: dict[str, int]
    total_rejections: int
    impossible_travel: list[TravelPair]
    flagged: bool
    refused_for_too_many_attempts_today: int  # not recorded one by one: counted in Redis (UTC day)


class FraudReview(msgspec.Struct, frozen=True):
    since: datetime
    members: list[SuspiciousMember]


class FlagRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
