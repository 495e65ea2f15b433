"""Store geofences, nearest-store search, check-in validation and fraud checks."""
