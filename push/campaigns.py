"""Campaigns in the console: drafted, checked, scheduled, cancelled; and a member's message previewed.

States: draft -> scheduled (the worker turns the audience into deliveries) -> sending -> done, or
cancelled from any state before done. Only a draft changes; a campaign that may already have reached a
member is never edited (cancel it and make another).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import msgspec
from msgspec import UNSET
from sqlalchemy import func, select, update

from accounts.errors import MemberNotFound
from infra.db import UnitOfWork
from infra.pages import fetch_page
from points.program import Program
from push.audience import check_stores_exist
from push.errors import (
    CampaignNotEditable,
    CampaignNotFound,
    CampaignStateConflict,
    InvalidSchedule,
    InvalidVariants,
)
from push.messages import personal_values, render_variant
from push.rules.deliveries import GROUPS
from push.rules.groups import pick_variant
from push.rules.scheduling import (
    QuietHours,
    Schedule,
    SendAt,
    SendAtBestHour,
    SendAtLocalTime,
    SendRecurring,
    starts_on,
)
from push.rules.segments import Segment
from push.rules.templates import check_message
from push.schemas import (
    CampaignChanges,
    CampaignDraft,
    CampaignPage,
    CampaignView,
    MessagePreview,
    Variant,
)
from push.tables import Campaign, CampaignState, Delivery, DeliveryState

ENDED = (CampaignState.DONE, CampaignState.CANCELLED)
MAX_LEAD = timedelta(days=366)


def _quiet_hours(campaign: Campaign) -> QuietHours | None:
    return msgspec.convert(campaign.quiet_hours, QuietHours) if campaign.quiet_hours else None


def _view(campaign: Campaign, deliveries: dict[str, int]) -> CampaignView:
    return CampaignView(
        id=campaign.id,
        name=campaign.name,
        state=campaign.state,
        transactional=campaign.transactional,
        variants=msgspec.convert(campaign.variants, list[Variant]),
        schedule=msgspec.convert(campaign.schedule, Schedule),
        segment=msgspec.convert(campaign.segment, Segment),
        deep_link=campaign.deep_link,
        quiet_hours=_quiet_hours(campaign),
        respect_quiet_hours=campaign.respect_quiet_hours,
        control_percent=campaign.control_percent,
        created_at=campaign.created_at,
        updated_at=campaign.updated_at,
        scheduled_at=campaign.scheduled_at,
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
        deliveries=deliveries,
    )


async def _checked(uow: UnitOfWork, draft: CampaignDraft) -> None:
    """Everything about a draft that its schema cannot say: message size, variant keys, stores."""
    keys = [variant.key for variant in draft.variants]
    if len(set(keys)) != len(keys) or set(keys) & set(GROUPS):
        raise InvalidVariants(f"variant keys must differ and not be {' or '.join(GROUPS)}", keys=keys)
    for variant in draft.variants:
        check_message(variant.title, variant.body, draft.deep_link)
    await check_stores_exist(uow, draft.segment)


def _check_schedule_now(schedule: Schedule, now: datetime) -> None:
    """Refuse a schedule that is already over when it is set, starts in the past, or reaches more than
    a year ahead (a campaign is drawn when it is scheduled)."""
    if isinstance(schedule, SendAt) and schedule.at < now:
        raise InvalidSchedule("`at` is in the past")
    if isinstance(schedule, SendAtBestHour) and schedule.window_end <= now:
        raise InvalidSchedule("the best-hour window is over")
    # A local date is a day somewhere until it has ended everywhere (UTC-12, a day after UTC+14).
    over_everywhere = (now - timedelta(hours=36)).date()
    if isinstance(schedule, SendAtLocalTime) and schedule.date < over_everywhere:
        raise InvalidSchedule("that local date is over in every time zone")
    if isinstance(schedule, SendRecurring) and schedule.start_date < over_everywhere:
        # Every past day would be drawn only to be skipped as too late, for every member.
        raise InvalidSchedule("a recurring schedule starts today or later")
    if starts_on(schedule, now) > (now + MAX_LEAD).date():
        raise InvalidSchedule("a campaign starts within a year of being scheduled")


def _row_values(draft: CampaignDraft) -> dict[str, Any]:
    return {
        "name": draft.name.strip(),
        "transactional": draft.transactional,
        "variants": msgspec.to_builtins(draft.variants),
        "deep_link": draft.deep_link,
        "segment": msgspec.to_builtins(draft.segment),
        "schedule": msgspec.to_builtins(draft.schedule),
        "quiet_hours": msgspec.to_builtins(draft.quiet_hours) if draft.quiet_hours else None,
        "respect_quiet_hours": draft.respect_quiet_hours,
        "control_percent": draft.control_percent,
    }


async def create_campaign(
    uow: UnitOfWork,
    staff_id: uuid.UUID,
    draft: CampaignDraft,
    now: datetime,
    *,
    campaign_id: uuid.UUID | None = None,
) -> CampaignView:
    """A new draft. `campaign_id` is for a replay of past campaigns (the demo's history): control groups
    and variants hash the campaign's id, so a replay that fixes it splits the members the same way."""
    await _checked(uow, draft)
    campaign = Campaign(
        **({"id": campaign_id} if campaign_id is not None else {}),
        state=CampaignState.DRAFT,
        created_by=staff_id,
        created_at=now,
        updated_at=now,
        **_row_values(draft),
    )
    uow.session.add(campaign)
    await uow.session.flush()
    return _view(campaign, {})


async def campaign_row(uow: UnitOfWork, campaign_id: uuid.UUID, *, for_update: bool = False) -> Campaign:
    campaign = await uow.session.get(Campaign, campaign_id, with_for_update=for_update)
    if campaign is None:
        raise CampaignNotFound()
    return campaign


async def _delivery_counts(uow: UnitOfWork, campaign_id: uuid.UUID) -> dict[str, int]:
    rows = await uow.session.execute(
        select(Delivery.state, func.count())
        .where(Delivery.campaign_id == campaign_id)
        .group_by(Delivery.state)
    )
    return {state.value: count for state, count in rows}


async def get_campaign(uow: UnitOfWork, campaign_id: uuid.UUID) -> CampaignView:
    campaign = await campaign_row(uow, campaign_id)
    return _view(campaign, await _delivery_counts(uow, campaign_id))


async def list_campaigns(uow: UnitOfWork, cursor: str | None, limit: int) -> CampaignPage:
    rows, next_cursor = await fetch_page(uow, select(Campaign), Campaign.id, cursor, limit, newest_first=True)
    return CampaignPage(items=[_view(campaign, {}) for campaign in rows], next_cursor=next_cursor)


async def change_campaign(
    uow: UnitOfWork, campaign_id: uuid.UUID, changes: CampaignChanges, now: datetime
) -> CampaignView:
    campaign = await campaign_row(uow, campaign_id, for_update=True)
    if campaign.state is not CampaignState.DRAFT:
        raise CampaignNotEditable(state=campaign.state.value)
    current = _draft_of(campaign)
    given = {
        field: value
        for field in CampaignChanges.__struct_fields__
        if (value := getattr(changes, field)) is not UNSET
    }
    draft = msgspec.structs.replace(current, **given)
    await _checked(uow, draft)
    for column, value in _row_values(draft).items():
        setattr(campaign, column, value)
    campaign.updated_at = now
    return _view(campaign, {})


def _draft_of(campaign: Campaign) -> CampaignDraft:
    return CampaignDraft(
        name=campaign.name,
        variants=msgspec.convert(campaign.variants, list[Variant]),
        schedule=msgspec.convert(campaign.schedule, Schedule),
        segment=msgspec.convert(campaign.segment, Segment),
        deep_link=campaign.deep_link,
        quiet_hours=_quiet_hours(campaign),
        respect_quiet_hours=campaign.respect_quiet_hours,
        control_percent=campaign.control_percent,
        transactional=campaign.transactional,
    )


async def schedule_campaign(uow: UnitOfWork, campaign_id: uuid.UUID, now: datetime) -> CampaignView:
    """From draft to scheduled: the worker then turns its audience into deliveries (moments later)."""
    campaign = await campaign_row(uow, campaign_id, for_update=True)
    if campaign.state is not CampaignState.DRAFT:
        raise CampaignStateConflict("only a draft can be scheduled", state=campaign.state.value)
    _check_schedule_now(msgspec.convert(campaign.schedule, Schedule), now)
    campaign.state, campaign.scheduled_at, campaign.updated_at = CampaignState.SCHEDULED, now, now
    return _view(campaign, {})


async def cancel_campaign(uow: UnitOfWork, campaign_id: uuid.UUID, now: datetime) -> CampaignView:
    """Stop every send not yet handed to FCM, including those a worker claimed but has not sent (it
    skips them). Messages already in flight (at most `concurrency` per worker) still arrive."""
    campaign = await campaign_row(uow, campaign_id, for_update=True)
    if campaign.state in ENDED:
        state = campaign.state.value
        raise CampaignStateConflict(f"the campaign is {state} already", state=state)
    await uow.session.execute(
        update(Delivery)
        .where(
            Delivery.campaign_id == campaign_id,
            Delivery.state.in_((DeliveryState.PENDING, DeliveryState.CLAIMED)),
        )
        .values(state=DeliveryState.CANCELLED, reason="campaign_cancelled")
    )
    campaign.state, campaign.finished_at, campaign.updated_at = CampaignState.CANCELLED, now, now
    return _view(campaign, await _delivery_counts(uow, campaign_id))


async def preview(
    uow: UnitOfWork, program: Program, campaign_id: uuid.UUID, member_id: uuid.UUID, now: datetime
) -> MessagePreview:
    """The message this member would get (their variant, their fields)."""
    campaign = await campaign_row(uow, campaign_id)
    variants = msgspec.convert(campaign.variants, list[Variant])
    key = pick_variant(member_id, campaign.id, [(v.key, v.weight) for v in variants])
    variant = next(v for v in variants if v.key == key)
    values = (await personal_values(uow, program, [member_id], [variant], now)).get(member_id)
    if values is None:
        raise MemberNotFound(member_id=str(member_id))
    title, body = render_variant(variant, values)
    data = {"campaign_id": str(campaign.id), "variant": key}
    if campaign.deep_link:
        data["deep_link"] = campaign.deep_link
    return MessagePreview(member_id=member_id, variant=key, title=title, body=body, data=data)
