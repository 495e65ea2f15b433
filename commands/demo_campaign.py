"""The demo's past push campaign, sent as it would have been: drafted and scheduled by the marketer, drawn
and dispatched by the worker at its time, through the project's local FCM server to the members' phones.

Every step is the product's own (`push.campaigns`, `push.materialize`, `push.dispatch`, `push.upkeep`),
run on a clock set to the past; so are the worker's hourly jobs the send depends on (population
engagement and audience profiles). What the phones received is read back from the local FCM server and
becomes the members' replies (opened or not, and a visit for some of those who opened it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from commands.demo_people import Person
from commands.demo_plan import Action, after_push
from commands.embedded_push import local_fcm_server
from domain.clock import SettableClock
from infra.db import Database
from points.program import Program
from push.campaigns import create_campaign, schedule_campaign
from push.dispatch import Dispatcher
from push.fcm import LOCAL_PROJECT_ID, FcmSender
from push.materialize import materialize_campaigns
from push.pacing import Pacer
from push.policy import PushPolicy
from push.profiles import refresh_profiles
from push.rules.scheduling import SendAtBestHour
from push.rules.segments import Segment
from push.schemas import CampaignDraft, Variant
from push.upkeep import finish_campaigns
from timeline.population import refresh_population
from timeline.segments import RfmBetween

CAMPAIGN_NAME = "Autumn linen week"
CONTROL_PERCENT = 30  # held back: enough members (about 50) for the report to compare with
WINDOW_HOURS = (8, 22)  # local: each member's message goes at their best hour between these
DRAFTED_BEFORE = timedelta(days=2)
SCHEDULED_BEFORE = timedelta(hours=1)  # the worker draws the audience right away
DISPATCH_STEP = timedelta(hours=1)


class _OnlySender(Pacer):
    """The replayed campaign is the only thing sending, to a local FCM server: there is no rate to share
    with other workers (the real Pacer shares it through Redis) and no 429 to pause for."""

    def __init__(self) -> None:  # no Redis: nothing is shared
        self.rate = PushPolicy().send_rate_per_second

    async def take(self, messages: int) -> None:
        return None

    async def pause(self, seconds: float) -> None:
        return None

    async def paused_for(self) -> float:
        return 0.0


def campaign_draft(day_start: datetime, time_zone: str) -> CampaignDraft:
    local = day_start.astimezone(ZoneInfo(time_zone))
    return CampaignDraft(
        name=CAMPAIGN_NAME,
        variants=[
            Variant(
                key="A",
                title="{display_name}さん、リネンの季節です",
                body="{favourite_store}でリネンがポイント1.5倍。今週末まで。",
            )
        ],
        schedule=SendAtBestHour(
            window_start=local.replace(hour=WINDOW_HOURS[0]),
            window_end=local.replace(hour=WINDOW_HOURS[1]),
        ),
        # Everyone who bought in the last year (a marketer's "customers" audience).
        segment=Segment(all=[RfmBetween(score="frequency", min=1)]),
        deep_link="tsunagari://offers",
        control_percent=CONTROL_PERCENT,
    )


async def send_past_campaign(
    db: Database,
    *,
    staff_id: uuid.UUID,
    campaign_id: uuid.UUID,
    draft: CampaignDraft,
    program: Program,
    policy: PushPolicy,
    people: Sequence[Person],
    time_zone: str,
    now: datetime,
    seed: int,
) -> list[Action]:
    """Send the campaign at its time; returns the members' replies to plan (their app's events, visits)."""
    schedule = draft.schedule
    assert isinstance(schedule, SendAtBestHour)
    drafted_at = schedule.window_start - DRAFTED_BEFORE
    async with db.unit_of_work() as uow:
        await create_campaign(uow, staff_id, draft, drafted_at, campaign_id=campaign_id)
    scheduled_at = schedule.window_start - SCHEDULED_BEFORE
    async with db.unit_of_work() as uow:
        await schedule_campaign(uow, campaign_id, scheduled_at)
    await refresh_population(db, scheduled_at)
    await refresh_profiles(db, program, scheduled_at)
    await materialize_campaigns(db, program, policy, scheduled_at)
    received = await _dispatch(db, program, policy, schedule.window_start, schedule.window_end)
    await finish_campaigns(db, schedule.window_end)
    by_address = {f"demo-fid-{person.member_id.hex}": person for person in people}
    replies: list[Action] = []
    for address, delivery_id, at in received:
        person = by_address.get(address)
        if person is not None:
            replies += after_push(person, campaign_id, delivery_id, at, time_zone, now, seed)
    return replies


async def _dispatch(
    db: Database, program: Program, policy: PushPolicy, start: datetime, end: datetime
) -> list[tuple[str, str, datetime]]:
    """Run the dispatcher through the window an hour at a time, as the worker would have; returns each
    message the phones received: (address, delivery id, when)."""
    clock = SettableClock(start)
    received: list[tuple[str, str, datetime]] = []
    with local_fcm_server() as url:
        sender = FcmSender(LOCAL_PROJECT_ID, base_url=url)
        try:
            dispatcher = Dispatcher(db, _OnlySender(), sender, policy, program, clock)
            async with httpx.AsyncClient(base_url=url) as phones:
                last_seq = 0
                while clock.now() <= end:
                    while await dispatcher.dispatch_once() > 0:
                        pass
                    messages = (await phones.get("/_local/messages", params={"after": last_seq})).json()
                    for message in messages:
                        received.append((message["target"], message["data"]["delivery_id"], clock.now()))
                        last_seq = max(last_seq, message["seq"])
                    clock.advance(DISPATCH_STEP)
        finally:
            await sender.close()
    return received
