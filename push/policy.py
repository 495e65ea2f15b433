"""The push program's settings: caps, quiet hours, control group, pacing. `TSUNAGARI_PUSH_POLICY` (JSON of
`PushPolicy`; omitted fields keep these defaults)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from push.rules.scheduling import QuietHours

Percent = Annotated[int, msgspec.Meta(ge=0, le=100)]


class PushPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Frequency caps across campaigns, per member, in calendar days and weeks of the member's zone;
    # transactional campaigns are exempt.
    max_per_day: Annotated[int, msgspec.Meta(ge=1, le=50)] = 2
    max_per_week: Annotated[int, msgspec.Meta(ge=1, le=200)] = 5
    # Members kept out of every campaign, to measure what campaigns achieve at all (stable per member).
    global_control_percent: Annotated[int, msgspec.Meta(ge=1, le=15)] = 5
    default_quiet_hours: QuietHours | None = QuietHours(start="22:00", end="08:00")
    # A member-local send time already passed when a campaign is scheduled: sent this late at most,
    # else skipped (suppressed `too_late`).
    late_minutes: Annotated[int, msgspec.Meta(ge=0, le=24 * 60)] = 60
    fallback_hour: Annotated[int, msgspec.Meta(ge=0, le=23)] = 19
    # Pacing: all workers together send at most this many messages a second to the FCM project.
    send_rate_per_second: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1_000
    claim_batch: Annotated[int, msgspec.Meta(ge=1, le=500)] = 500  # deliveries a worker claims at once
    # Requests to FCM in flight per worker: also the most messages whose fate a killed worker leaves
    # unknown (they are marked `unconfirmed`, never sent twice).
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=500)] = 50
    give_up_after_hours: Annotated[int, msgspec.Meta(ge=1, le=72)] = 24  # retries stop, failure recorded
    # A worker renews its claims' lease while it works; claims whose lease ran out belong to a worker
    # that died: those not yet handed to FCM are sent by another, those in flight become `unconfirmed`.
    claim_lease_seconds: Annotated[int, msgspec.Meta(ge=3, le=600)] = 60
    attribution_hours: Annotated[int, msgspec.Meta(ge=1, le=30 * 24)] = 72
    retire_address_after_days: Annotated[int, msgspec.Meta(ge=30, le=730)] = 270


def load_push_policy(text: str | None) -> PushPolicy:
    """The policy from its JSON text (`TSUNAGARI_PUSH_POLICY`); ValueError names the bad field."""
    if not text:
        return PushPolicy()
    try:
        return msgspec.json.decode(text, type=PushPolicy)
    except msgspec.ValidationError as error:
        raise ValueError(f"TSUNAGARI_PUSH_POLICY: {error}") from error
