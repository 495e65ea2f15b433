"""Check-in rejections, each with its own code. A rejection is recorded for fraud review although the
request fails (up to a daily number per member); being refused for too many attempts is not."""

from __future__ import annotations

from domain.errors import DomainError, NotFound, TooManyRequests


class CheckInRejected(DomainError):
    status = 422


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


class TooManyCheckInAttempts(TooManyRequests):
    code = "too_many_check_in_attempts"
    title = "Too many check-in attempts; try again later"


class CheckInStoreNotFound(NotFound):
    code = "store_not_found"
    title = "No such store"
