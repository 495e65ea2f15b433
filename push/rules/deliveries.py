"""What a campaign does for one member of its audience: hold them back, skip them, or message each of their
devices, when; and, when a delivery falls due, whether it goes now.

When drawn, in this order: the global control group (every non-transactional campaign leaves them out), the
campaign's own control group, the schedule (too late, or no time outside quiet hours: skipped), and
their devices (none reachable: skipped as `no_address`). A member held back still gets the time they
would have been messaged, so the report compares like with like over the same attribution window.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Literal

import msgspec

from push.rules.caps import may_send
from push.rules.groups import in_campaign_control, in_global_control, pick_variant
from push.rules.scheduling import QuietHours, Schedule, outside_quiet_hours, plan_delivery

CONTROL = "control"
GLOBAL_CONTROL = "global_control"
GROUPS = (CONTROL, GLOBAL_CONTROL)  # report groups besides the variants; no variant may take these names
Kind = Literal["control", "suppressed", "pending"]


class CampaignTerms(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: uuid.UUID
    transactional: bool
    control_percent: int
    variant_weights: list[tuple[str, int]]
    schedule: Schedule
    quiet_hours: QuietHours | None  # None: sent whatever the hour
    late: timedelta
    global_control_percent: int
    fallback_hour: int


class MemberPlan(msgspec.Struct, frozen=True):
    kind: Kind
    group: str  # the variant, or a control group
    reason: str | None
    due_at: datetime
    latest_at: datetime | None
    device_slots: list[int | None]  # one delivery row each; None: the member, no device


def plan_member(
    terms: CampaignTerms,
    *,
    member_id: uuid.UUID,
    time_zone: str,
    engagement: list[int],
    population: list[int],
    device_slots: Sequence[int],
    occurrence: date | None,
    now: datetime,
) -> MemberPlan:
    plan = plan_delivery(
        terms.schedule,
        occurrence=occurrence,
        time_zone=time_zone,
        engagement=engagement,
        population=population,
        fallback_hour=terms.fallback_hour,
        quiet=terms.quiet_hours,
        late=terms.late,
        now=now,
    )
    due = plan.due_at or now
    if not terms.transactional:
        if in_global_control(member_id, terms.global_control_percent):
            return MemberPlan("control", GLOBAL_CONTROL, GLOBAL_CONTROL, due, None, [None])
        if terms.control_percent and in_campaign_control(member_id, terms.campaign_id, terms.control_percent):
            return MemberPlan("control", CONTROL, CONTROL, due, None, [None])
    variant = pick_variant(member_id, terms.campaign_id, terms.variant_weights)
    if plan.skipped is not None:
        return MemberPlan("suppressed", variant, plan.skipped, due, None, [None])
    if not device_slots:
        return MemberPlan("suppressed", variant, "no_address", due, None, [None])
    return MemberPlan("pending", variant, None, due, plan.latest_at, list(device_slots))


class AtClaim(msgspec.Struct, frozen=True):
    """What a worker does with a due delivery: send it, wait (until `due_at`), or not send it."""

    action: Literal["send", "wait", "suppress", "cancel"]
    reason: str | None = None
    due_at: datetime | None = None


def at_claim(
    *,
    campaign_live: bool,
    transactional: bool,
    quiet_hours: QuietHours | None,
    time_zone: str,
    latest_at: datetime | None,
    has_address: bool,
    address_reached: bool,
    counted: Sequence[tuple[object, datetime]],
    campaign_key: object,
    max_per_day: int,
    max_per_week: int,
    now: datetime,
) -> AtClaim:
    """Checked again when due, because time has passed since the campaign was drawn: the campaign may be
    over, a retry may have moved into quiet hours or past the latest useful moment, the device may
    have lost its address, other campaigns may have used up the member's caps (`counted`: the
    campaigns they were sent, with when). `address_reached`: this occurrence of the campaign already went
    (or is going) to the device's address through another device row: the address moved between
    logins, and a phone gets one message per campaign."""
    if not campaign_live:
        return AtClaim("cancel", "campaign_cancelled")
    if latest_at is not None and now > latest_at:
        return AtClaim("suppress", "too_late")
    if quiet_hours is not None:
        plan = outside_quiet_hours(now, latest_at or now, quiet_hours, time_zone)
        if plan.skipped is not None:
            return AtClaim("suppress", "quiet_hours")
        if plan.due_at is not None and plan.due_at > now:
            return AtClaim("wait", "quiet_hours", plan.due_at)
    if not has_address:
        return AtClaim("suppress", "no_address")
    if address_reached:
        return AtClaim("suppress", "duplicate_address")
    if not transactional and not may_send(counted, campaign_key, now, time_zone, max_per_day, max_per_week):
        return AtClaim("suppress", "cap")
    return AtClaim("send")
