"""Request and response bodies for stores and POS terminals."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from stores.rules import DEFAULT_CHECK_IN_RADIUS_M, MAX_CHECK_IN_RADIUS_M, MIN_CHECK_IN_RADIUS_M, StoreStatus

StoreCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9][A-Z0-9-]{1,19}$", examples=["TKY-GINZA"])]
StoreName = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Address = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0, examples=[35.6717])]
Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0, examples=[139.7650])]
RadiusM = Annotated[int, msgspec.Meta(ge=MIN_CHECK_IN_RADIUS_M, le=MAX_CHECK_IN_RADIUS_M)]
TimeZoneName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, examples=["Asia/Tokyo"])]
TerminalName = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
ClockTime = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["10:00"])]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Hours = dict[Weekday, Annotated[list[tuple[ClockTime, ClockTime]], msgspec.Meta(max_length=4)]]
Polygon = Annotated[list[tuple[Latitude, Longitude]], msgspec.Meta(min_length=3, max_length=100)]


class StoreDraft(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: StoreCode
    name: StoreName
    address: Address
    latitude: Latitude
    longitude: Longitude
    time_zone: TimeZoneName = "Asia/Tokyo"
    check_in_radius_m: RadiusM = DEFAULT_CHECK_IN_RADIUS_M
    status: StoreStatus = StoreStatus.OPEN
    opening_hours: Hours | None = None
    fence_polygon: Polygon | None = None
    geofence_enabled: bool = True


class StoreChanges(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Fields left out (or null) stay as they are."""

    name: StoreName | None = None
    address: Address | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    time_zone: TimeZoneName | None = None
    check_in_radius_m: RadiusM | None = None
    status: StoreStatus | None = None
    opening_hours: Hours | None = None
    fence_polygon: Polygon | None = None
    geofence_enabled: bool | None = None


class StoreView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    code: str
    name: str
    address: str
    latitude: float
    longitude: float
    time_zone: str
    check_in_radius_m: int
    status: StoreStatus
    opening_hours: dict[str, list[tuple[str, str]]] | None
    fence_polygon: list[tuple[float, float]] | None
    geofence_enabled: bool
    created_at: datetime
    updated_at: datetime


class StorePage(msgspec.Struct, frozen=True):
    items: list[StoreView]
    next_cursor: str | None


class TerminalDraft(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: TerminalName


class TerminalChanges(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: TerminalName | None = None
    enabled: bool | None = None


class TerminalView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    store_id: uuid.UUID
    name: str
    key_id: str
    server_key_id: str  # the server key its secret derives from: re-issue it when that key is retiring
    enabled: bool
    created_at: datetime
    last_seen_at: datetime | None
    software_version: str | None


class TerminalCredentials(msgspec.Struct, frozen=True):
    """Returned once, at creation or re-issue: the secret is not stored and cannot be shown again."""

    terminal: TerminalView
    key_id: str
    secret: str


class TerminalPage(msgspec.Struct, frozen=True):
    items: list[TerminalView]
    next_cursor: str | None


class Heartbeat(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    software_version: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]


class TerminalIdentity(msgspec.Struct, frozen=True):
    terminal_id: uuid.UUID
    key_id: str
    store_id: uuid.UUID
    store_code: str
    store_name: str
    store_time_zone: str
    server_time: datetime
