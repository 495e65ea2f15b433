"""Error codes of the timeline capability (per-event rejections are `timeline.rules.EventRejection`)."""

from __future__ import annotations

from domain.errors import InvalidInput


class InvalidTimeRange(InvalidInput):
    code = "invalid_time_range"
    title = "`since` must be before `until`"
