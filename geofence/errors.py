"""Check-in rejections, each with its own code. They are recorded (for fraud review) even though the
request fails, so they keep the unit of work's writes (`records_outcome`)."""

from __future__ import annotations

from domain.errors import DomainError, InvalidInput, NotFound


class CheckInRejected(DomainError):
    status = 422
    records_outcome = True


class GeofenceDisabled(CheckInRejected):
    code = "geofence_disabled"
    title = "Check-ins are switched off for this store"


class StoreClosed(CheckInRejected):
    code = "store_closed"
    title = "The store is closed now"


class MockLocation(CheckInRejected):
    code = "mock_location"
    title = "The device reports a mocked location"


class LocationTooInaccurate(CheckInRejected):
    code = "location_too_inaccurate"
    title = "The location fix is not accurate enough; try again outdoors or near a window"


class LocationStale(CheckInRejected):
    code = "location_stale"
    title = "The location fix is too old; get a fresh one"


class LocationInFuture(CheckInRejected):
    code = "location_in_future"
    title = "The location fix is timed in the future; check the device clock"


class OutsideGeofence(CheckInRejected):
    code = "outside_geofence"
    title = "The location is not at the store"


class ImpossibleTravel(CheckInRejected):
    code = "impossible_travel"
    title = "The distance from the previous check-in cannot have been travelled in the time between"


class TooManyCheckInAttempts(CheckInRejected):
    code = "too_many_check_in_attempts"
    status = 429
    title = "Too many check-in attempts; try again later"


class InvalidPolygon(InvalidInput):
    code = "invalid_polygon"
    title = "The fence polygon is not usable"


class CheckInStoreNotFound(NotFound):
    code = "store_not_found"
    title = "No such store"
