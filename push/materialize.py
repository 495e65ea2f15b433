"""Turning a scheduled campaign's audience into deliveries: one row per member (held back or skipped) or
per reachable device (to send), with the time it is due in that member's zone.

A worker job. Each page of the audience is one transaction that first takes a share lock on the
campaign, so a cancel either waits for the page (and then cancels its rows too) or comes first (and the
page is not written). Rows are unique per campaign occurrence and device, so a page written twice
(after a crash) adds nothing; a member's `push_suppressed` event is recorded only with the row that
inserted.

One-off campaigns are drawn once. A recurring campaign's occurrence is drawn the day before its date
(UTC), early enough for the zones furthest ahead; members who join later miss that occurrence.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from accounts.push_addresses import push_targets
from domain.ids import new_id
from domain.interactions import InteractionKind
from infra.db import Database, UnitOfWork
from points.program import Program
from push.audience import audience_page
from push.events import campaign_event
from push.policy import PushPolicy
from push.profiles import refresh_profiles
from push.rules.deliveries import CampaignTerms, MemberPlan, plan_member
from push.rules.scheduling import (
    QuietHours,
    Schedule,
    SendRecurring,
    starts_on,
)
from push.rules.segments import Segment
from push.schemas import Variant
from push.tables import Campaign, CampaignState, Delivery, DeliveryState
from timeline.population import population_hours
from timeline.recording import record_many

log = logging.getLogger(__name__)
PAGE = 1000
LIVE = (CampaignState.SCHEDULED, CampaignState.SENDING)
_STATE_OF_KIND = {
    "control": DeliveryState.CONTROL,
    "suppressed": DeliveryState.SUPPRESSED,
    "pending": DeliveryState.PENDING,
}


def occurrences_due(campaign: Campaign, schedule: Schedule, now: datetime) -> list[date]:
    """The occurrences to draw now: a one-off campaign's only one until drawn; a recurring campaign's
    dates up to tomorrow (UTC) not drawn yet."""
    if not isinstance(schedule, SendRecurring):
        if campaign.materialized_through is not None or campaign.scheduled_at is None:
            return []
        return [starts_on(schedule, campaign.scheduled_at)]  # a one-off's deliveries are filed under it
    horizon = (now + timedelta(days=1)).date()
    drawn = campaign.materialized_through
    return [day for day in schedule.occurrences() if day <= horizon and (drawn is None or day > drawn)]


def terms_of(campaign: Campaign, policy: PushPolicy) -> CampaignTerms:
    variants = msgspec.convert(campaign.variants, list[Variant])
    quiet = None
    if campaign.respect_quiet_hours:
        quiet = (
            msgspec.convert(campaign.quiet_hours, QuietHours)
            if campaign.quiet_hours
            else policy.default_quiet_hours
        )
    return CampaignTerms(
        campaign_id=campaign.id,
        transactional=campaign.transactional,
        control_percent=campaign.control_percent,
        variant_weights=[(v.key, v.weight) for v in variants],
        schedule=msgspec.convert(campaign.schedule, Schedule),
        quiet_hours=quiet,
        late=timedelta(minutes=policy.late_minutes),
        global_control_percent=policy.global_control_percent,
        fallback_hour=policy.fallback_hour,
    )


async def materialize_campaigns(db: Database, program: Program, policy: PushPolicy, now: datetime) -> int:
    """Draw every live campaign's due occurrences; returns the deliveries written. A campaign that cannot
    be drawn is logged and tried again on the next run; it never holds back the others."""
    async with db.unit_of_work() as uow:
        campaigns = list(
            (await uow.session.execute(select(Campaign).where(Campaign.state.in_(LIVE)))).scalars()
        )
    due: list[tuple[uuid.UUID, date]] = []
    for campaign in campaigns:
        with _logged_failure(campaign.id):
            schedule = msgspec.convert(campaign.schedule, Schedule)
            due += [(campaign.id, day) for day in occurrences_due(campaign, schedule, now)]
    if not due:
        return 0
    await refresh_profiles(db, program, now, only_missing=True)  # members who joined since the sweep
    written = 0
    for campaign_id, occurrence in due:
        with _logged_failure(campaign_id):
            written += await _draw(db, policy, campaign_id, occurrence, now)
    return written


@contextmanager
def _logged_failure(campaign_id: uuid.UUID) -> Iterator[None]:
    try:
        yield
    except Exception:
        log.exception("campaign could not be drawn", extra={"campaign_id": str(campaign_id)})


async def _draw(
    db: Database, policy: PushPolicy, campaign_id: uuid.UUID, occurrence: date, now: datetime
) -> int:
    written = 0
    after: uuid.UUID | None = None
    while True:
        async with db.unit_of_work() as uow:
            campaign = await _live(uow, campaign_id)
            if campaign is None:
                return written  # cancelled meanwhile: nothing more is drawn
            terms = terms_of(campaign, policy)
            recurring = isinstance(terms.schedule, SendRecurring)
            members = await audience_page(uow, msgspec.convert(campaign.segment, Segment), after, PAGE, now)
            if not members:
                campaign.materialized_through = occurrence
                log.info(
                    "campaign drawn",
                    extra={"campaign_id": str(campaign_id), "occurrence": str(occurrence), "rows": written},
                )
                return written
            after = members[-1].member_id
            targets = await push_targets(uow, [m.member_id for m in members])
            population = await population_hours(uow)
            plans = {
                m.member_id: (
                    m.time_zone,
                    plan_member(
                        terms,
                        member_id=m.member_id,
                        time_zone=m.time_zone,
                        engagement=m.engagement_hours,
                        population=population,
                        device_slots=[t.slot for t in targets.get(m.member_id, [])],
                        occurrence=occurrence if recurring else None,
                        now=now,
                    ),
                )
                for m in members
            }
            written += await _write(uow, campaign, occurrence, plans, now)


async def _live(uow: UnitOfWork, campaign_id: uuid.UUID) -> Campaign | None:
    """The campaign, share-locked for this transaction, if it is still to be sent."""
    campaign = await uow.session.get(Campaign, campaign_id, with_for_update={"read": True})
    return campaign if campaign is not None and campaign.state in LIVE else None


async def _write(
    uow: UnitOfWork,
    campaign: Campaign,
    occurrence: date,
    plans: dict[uuid.UUID, tuple[str, MemberPlan]],
    now: datetime,
) -> int:
    planned = [
        (new_id(), member_id, zone, plan, slot)
        for member_id, (zone, plan) in plans.items()
        for slot in plan.device_slots
    ]
    rows = [
        {
            "id": delivery_id,
            "campaign_id": campaign.id,
            "occurrence": occurrence,
            "member_id": member_id,
            "device_slot": slot,
            "variant": plan.group,
            "transactional": campaign.transactional,
            "time_zone": zone,
            "state": _STATE_OF_KIND[plan.kind],
            "reason": plan.reason,
            "first_due_at": plan.due_at,
            "due_at": plan.due_at,
            "latest_at": plan.latest_at,
            "attempts": 0,
            "created_at": now,
        }
        for delivery_id, member_id, zone, plan, slot in planned
    ]
    statement = (
        pg_insert(Delivery)
        .on_conflict_do_nothing(constraint="uq_push_deliveries_once_per_device")
        .returning(Delivery.id)
    )
    inserted = set((await uow.session.execute(statement, rows)).scalars())
    held_back = [
        campaign_event(
            InteractionKind.PUSH_SUPPRESSED, member_id, campaign.id, delivery_id, plan.group, plan.reason, now
        )
        for delivery_id, member_id, _, plan, _ in planned
        if delivery_id in inserted and plan.kind != "pending"
    ]
    await record_many(uow, held_back, now)
    return len(inserted)
