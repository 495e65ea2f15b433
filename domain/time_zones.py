"""Plain validation of places and time zones shared by stores, members and geofences."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from domain.errors import InvalidInput

_KNOWN_ZONES = frozenset(available_timezones())


class InvalidTimeZone(InvalidInput):
    code = "invalid_time_zone"
    title = "Not an IANA time zone name"


def checked_time_zone(name: str) -> str:
    """The name unchanged if it is an IANA zone (e.g. `Asia/Tokyo`), else InvalidTimeZone."""
    if name not in _KNOWN_ZONES:
        raise InvalidTimeZone(f"{name!r} is not an IANA time zone name such as 'Asia/Tokyo'")
    try:
        ZoneInfo(name)
    except ZoneInfoNotFoundError as error:
        raise InvalidTimeZone(f"{name!r} is not available on this server") from error
    return name
