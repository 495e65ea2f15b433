"""What a moving phone, a careless marketer or a curious app cannot do to push campaigns: get one campaign
twice on one phone, hold back every other campaign, learn their control group, or count opens of messages
never sent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from accounts.tables import Member, MemberDevice
from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from push.tables import Campaign, Delivery, DeliveryState
from stores.tables import Store
from tests.integration.factories import PASSWORD, bearer, create_store
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
from tests.integration.register import shopper


async def test_a_phone_whose_address_moved_to_another_login_gets_the_campaign_once(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
    marketer: dict[str, Any],
) -> None:
    (member,) = await add_members(db, 1, clock.now(), devices=2)
    phone = address_of(member, 0)
    campaign = await create_campaign(client, marketer, transactional=True)  # never held back as control
    await schedule(client, marketer, campaign["id"])
    await draw(db, clock, settings)
    async with db.unit_of_work() as uow:  # the second login's message falls due later
        await uow.session.execute(
            update(Delivery)
            .where(Delivery.member_id == member, Delivery.device_slot == 1)
            .values(due_at=clock.now() + timedelta(minutes=5))
        )
    async with dispatcher(settings, fcm, clock, db) as sender:
        await send_all_due(sender)
        # The phone logs in again: its address moves from the first login's device row to the second's.
        async with db.unit_of_work() as uow:
            await uow.session.execute(
                update(MemberDevice).where(MemberDevice.member_id == member).values(push_address=None)
            )
            await uow.session.execute(
                update(MemberDevice)
                .where(MemberDevice.member_id == member, MemberDevice.slot == 1)
                .values(push_address=phone)
            )
        clock.advance(timedelta(minutes=10))
        await send_all_due(sender)
    assert [m["target"] for m in fcm.messages()] == [phone]
    assert fcm.summary()["repeated_to_device"] == []
    states = {row.device_slot: (row.state, row.reason) for row in await deliveries(db, campaign["id"])}
    assert states == {0: (DeliveryState.SENT, None), 1: (DeliveryState.SUPPRESSED, "duplicate_address")}


async def test_a_campaign_whose_store_was_archived_is_drawn_as_nobody_near_it(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    admin: dict[str, Any],
    marketer: dict[str, Any],
) -> None:
    await add_members(db, 3, clock.now())
    store = await create_store(client, admin)
    near = {"all": [{"field": "near_store", "store_id": store["id"], "within_km": 5}]}
    gone = await create_campaign(client, marketer, segment=near)
    await schedule(client, marketer, gone["id"])
    archived = await client.delete(f"/v1/console/stores/{store['id']}", headers=bearer(admin))
    assert archived.status_code == 204
    everyone = await create_campaign(client, marketer)
    await schedule(client, marketer, everyone["id"])
    await draw(db, clock, settings)
    assert await deliveries(db, gone["id"]) == []
    assert len(await deliveries(db, everyone["id"])) == 3
    # A segment saved from now on cannot name it.
    refused = await client.post(
        "/v1/console/campaigns",
        json={**{k: gone[k] for k in ("name", "variants", "schedule")}, "segment": near},
        headers=bearer(marketer),
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "unknown_store"
    async with db.unit_of_work() as uow:
        assert (await uow.session.get(Store, store["id"])) is not None


@pytest.mark.logs_errors  # the unreadable campaign is logged, by name
async def test_a_campaign_that_cannot_be_drawn_does_not_hold_back_the_others(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    marketer: dict[str, Any],
) -> None:
    await add_members(db, 3, clock.now())
    broken = await create_campaign(client, marketer)
    await schedule(client, marketer, broken["id"])
    async with db.unit_of_work() as uow:  # e.g. written by an older release with other rules
        await uow.session.execute(
            update(Campaign)
            .where(Campaign.id == broken["id"])
            .values(schedule={"kind": "local_time", "date": "9999-12-31", "time": "23:00"})
        )
    fine = await create_campaign(client, marketer)
    await schedule(client, marketer, fine["id"])
    await draw(db, clock, settings)
    assert await deliveries(db, broken["id"]) == []
    assert len(await deliveries(db, fine["id"])) == 3


async def test_members_do_not_see_outreach_nor_count_opens_of_messages_never_sent(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
    admin: dict[str, Any],
    marketer: dict[str, Any],
) -> None:
    sent_to, held_back = await shopper(client), await shopper(client)
    for member, permission in ((sent_to, "granted"), (held_back, "denied")):
        registered = await client.put(
            "/v1/app/devices/current/push-address",
            json={
                "kind": "fid",
                "address": f"fid-{member.session['member']['id']}",
                "platform": "ios",
                "app_version": "4.2.0",
                "locale": "ja-JP",
                "permission": permission,
            },
            headers=bearer(member.session),
        )
        assert registered.status_code == 204, registered.text
    campaign = await create_campaign(client, marketer, transactional=True)  # never held back as control
    await schedule(client, marketer, campaign["id"])
    await draw(db, clock, settings)
    async with dispatcher(settings, fcm, clock, db) as sender:
        await send_all_due(sender)
    rows = {str(row.member_id): row for row in await deliveries(db, campaign["id"])}
    assert rows[sent_to.session["member"]["id"]].state is DeliveryState.SENT
    assert rows[held_back.session["member"]["id"]].state is DeliveryState.SUPPRESSED

    for member in (sent_to, held_back):
        delivery = rows[member.session["member"]["id"]]
        opened = await client.post(
            "/v1/app/events",
            json={
                "events": [
                    {
                        "client_event_id": str(delivery.id),
                        "kind": "push_opened",
                        "occurred_at": (clock.now() + timedelta(minutes=1)).isoformat(),
                        "subject": {"type": "campaign", "id": campaign["id"]},
                        "properties": {"delivery_id": str(delivery.id)},
                    }
                ]
            },
            headers=bearer(member.session),
        )
        assert opened.json()["recorded"] == 1, opened.text
        own = await client.get("/v1/app/timeline", headers=bearer(member.session))
        kinds = {event["kind"] for event in own.json()["items"]}
        assert "push_opened" in kinds
        assert not kinds & {"push_sent", "push_suppressed"}  # what was decided about them stays with staff
    staff_view = await client.get(
        f"/v1/console/members/{held_back.session['member']['id']}/timeline", headers=bearer(admin)
    )
    assert "push_suppressed" in {event["kind"] for event in staff_view.json()["items"]}

    report = (
        await client.get(f"/v1/console/campaigns/{campaign['id']}/report", headers=bearer(marketer))
    ).json()
    opened_in_report = sum(group["opened"] for group in report["groups"])
    assert opened_in_report == 1  # the open of a message never sent is not counted


async def test_a_nul_character_anywhere_in_a_body_is_refused_not_a_server_error(
    client: httpx.AsyncClient, db: Database
) -> None:
    def body(display_name: bytes) -> bytes:
        return b'{"email": "nul@example.jp", "password": "%s", "display_name": "%s"}' % (
            PASSWORD.encode(),
            display_name,
        )

    headers = {"content-type": "application/json"}
    response = await client.post("/v1/app/members", content=body(b"a\\u0000b"), headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"
    async with db.unit_of_work() as uow:
        found = await uow.session.execute(select(Member.id).where(Member.email == "nul@example.jp"))
        assert found.first() is None
    # A backslash followed by "u0000" is text, not NUL.
    escaped = await client.post("/v1/app/members", content=body(b"a\\\\u0000b"), headers=headers)
    assert escaped.status_code == 201, escaped.text
    assert escaped.json()["member"]["display_name"] == "a\\u0000b"
