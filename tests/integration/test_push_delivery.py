"""Campaign deliveries end to end: drawn from the audience, claimed, sent through firebase-admin to the
local FCM server, recorded on the timeline."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from push.tables import DeliveryState
from tests.integration.push_support import (
    LocalFcmServer,
    add_members,
    address_of,
    create_campaign,
    deliveries,
    dispatcher,
    draw,
    schedule,
    send_all_due,
)
from timeline.tables import TimelineEvent


async def test_a_campaign_reaches_each_device_once_with_its_own_fields(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
    marketer: dict[str, Any],
) -> None:
    members = await add_members(db, 30, clock.now(), devices=2)
    campaign = await create_campaign(client, marketer)
    await schedule(client, marketer, campaign["id"])
    await draw(db, clock, settings)
    async with dispatcher(settings, fcm, clock, db) as sender:
        await send_all_due(sender)
    rows = await deliveries(db, campaign["id"])
    sent = [row for row in rows if row.state is DeliveryState.SENT]
    received = fcm.messages()
    summary = fcm.summary()
    assert summary["duplicate_deliveries"] == summary["repeated_to_device"] == []
    assert len(received) == len(sent) > 0
    assert {(m["target"], m["data"]["delivery_id"]) for m in received} == {
        (address_of(row.member_id, row.device_slot or 0), str(row.id)) for row in sent
    }
    async with db.unit_of_work() as uow:
        events = (
            (await uow.session.execute(select(TimelineEvent).where(TimelineEvent.kind == "push_sent")))
            .scalars()
            .all()
        )
    assert {e.properties["delivery_id"] for e in events} == {str(row.id) for row in sent}
    assert set(members) >= {row.member_id for row in rows}
