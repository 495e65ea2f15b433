"""The console's campaign API: who may use it, what it refuses (and then saves nothing), the states a
campaign goes through, the preview of a member's message, and the report of what it achieved."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from accounts.rules import StaffRole
from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from push.rules.groups import in_campaign_control, in_global_control
from push.tables import Campaign
from tests.integration.factories import bearer, create_store, create_terminal, staff_login
from tests.integration.problems import assert_problem
from tests.integration.push_support import (
    TEST_POLICY,
    LocalFcmServer,
    add_members,
    create_campaign,
    dispatcher,
    draw,
    schedule,
    send_all_due,
)
from tests.integration.register import pos, sale, shopper

CAMPAIGNS = "/v1/console/campaigns"
PURCHASES = "/v1/pos/purchases"
VALID = {
    "name": "Winter linen",
    "variants": [{"key": "A", "title": "Hello {display_name}", "body": "You have {points_balance} points."}],
    "schedule": {"kind": "now"},
}


async def campaign_count(db: Database) -> int:
    async with db.unit_of_work() as uow:
        return int((await uow.session.execute(select(func.count()).select_from(Campaign))).scalar_one())


async def test_only_staff_may_manage_campaigns(
    client: httpx.AsyncClient, admin: dict[str, Any], marketer: dict[str, Any]
) -> None:
    member = await shopper(client)
    assert (await client.post(CAMPAIGNS, json=VALID)).status_code == 401
    assert_problem(
        await client.post(CAMPAIGNS, json=VALID, headers=bearer(member.session)), 401, "access_token_invalid"
    )
    assert (await client.post(CAMPAIGNS, json=VALID, headers=bearer(marketer))).status_code == 201
    assert (await client.post(CAMPAIGNS, json=VALID, headers=bearer(admin))).status_code == 201
    listed = await client.get(CAMPAIGNS, headers=bearer(member.session))
    assert listed.status_code == 401


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"segment": {"all": [{"field": "shoe_size", "min": 40}]}}, 400, "validation_failed"),
        ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, 400, "validation_failed"),
        ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, 422, "rule_broken"),
        ({"quiet_hours": {"start": "22:00"}}, 400, "validation_failed"),
        ({"variants": [{"key": "A", "title": "Hi", "body": "あ" * 1400}]}, 422, "message_too_large"),
        ({"variants": [{"key": "A", "title": "Hi {nickname}", "body": "b"}]}, 422, "unknown_message_field"),
        ({"variants": [{"key": "A", "title": "t", "body": "b"}] * 2}, 422, "invalid_variants"),
        ({"variants": [{"key": "control", "title": "t", "body": "b"}]}, 422, "invalid_variants"),
        ({"variants": []}, 400, "validation_failed"),
        ({"deep_link": "javascript:alert(1)"}, 400, "validation_failed"),
        ({"control_percent": "10"}, 400, "validation_failed"),  # a number sent as text
        ({"control_percent": 80}, 400, "validation_failed"),
        ({"schedule": {"kind": "at", "at": "2027-01-01T09:00:00"}}, 400, "validation_failed"),  # no zone
        ({"schedule": {"kind": "whenever"}}, 400, "validation_failed"),
        ({"name": ""}, 400, "validation_failed"),
        ({"budget": 100}, 400, "validation_failed"),
        ({"name": "   "}, 400, "validation_failed"),
        ({"name": "Linen\u0000"}, 400, "validation_failed"),
        ({"variants": [{"key": "A", "title": "t\u0000", "body": "b"}]}, 400, "validation_failed"),
        (
            {"schedule": {"kind": "local_time", "date": "9999-12-31", "time": "23:00"}},
            400,
            "validation_failed",
        ),
        (
            {
                "schedule": {
                    "kind": "recurring",
                    "time": "09:00",
                    "start_date": "9999-06-01",
                    "end_date": "9999-12-31",
                }
            },
            400,
            "validation_failed",
        ),
        # Fits in three-byte characters, not when a member's name is 80 emoji (four bytes each).
        (
            {"variants": [{"key": "A", "title": "{display_name}" * 10, "body": "a" * 1513}]},
            422,
            "message_too_large",
        ),
    ],
)
async def test_bad_campaigns_are_refused_and_nothing_is_saved(
    client: httpx.AsyncClient,
    db: Database,
    marketer: dict[str, Any],
    change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    response = await client.post(CAMPAIGNS, json={**VALID, **change}, headers=bearer(marketer))
    assert_problem(response, status, code)
    assert await campaign_count(db) == 0


async def test_the_largest_message_that_fits_is_accepted(
    client: httpx.AsyncClient, marketer: dict[str, Any]
) -> None:
    fits = {"key": "A", "title": "Hi", "body": "あ" * 1000}  # 3,000 bytes of Japanese
    response = await client.post(CAMPAIGNS, json={**VALID, "variants": [fits]}, headers=bearer(marketer))
    assert response.status_code == 201, response.text


async def test_a_campaign_goes_from_draft_to_scheduled_to_cancelled_and_only_a_draft_changes(
    client: httpx.AsyncClient, clock: SettableClock, marketer: dict[str, Any]
) -> None:
    campaign = await create_campaign(client, marketer)
    url = f"{CAMPAIGNS}/{campaign['id']}"
    renamed = await client.patch(url, json={"name": "Linen, again"}, headers=bearer(marketer))
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Linen, again"
    assert renamed.json()["variants"] == campaign["variants"]  # fields not sent stay as they were
    bad = await client.patch(url, json={"quiet_hours": {"start": "x", "end": "y"}}, headers=bearer(marketer))
    assert_problem(bad, 400, "validation_failed")
    assert (await client.get(url, headers=bearer(marketer))).json()["name"] == "Linen, again"
    quiet = {"start": "21:00", "end": "09:00"}
    assert (await client.patch(url, json={"quiet_hours": quiet}, headers=bearer(marketer))).json()[
        "quiet_hours"
    ] == quiet
    cleared = await client.patch(url, json={"quiet_hours": None}, headers=bearer(marketer))
    assert cleared.json()["quiet_hours"] is None  # the program's apply again
    assert cleared.json()["name"] == "Linen, again"

    scheduled = await schedule(client, marketer, campaign["id"])
    assert scheduled["state"] == "scheduled"
    assert_problem(
        await client.patch(url, json={"name": "Too late"}, headers=bearer(marketer)),
        409,
        "campaign_not_editable",
    )
    assert_problem(
        await client.post(f"{url}/schedule", headers=bearer(marketer)), 409, "campaign_state_conflict"
    )
    cancelled = await client.post(f"{url}/cancel", headers=bearer(marketer))
    assert cancelled.json()["state"] == "cancelled"
    assert_problem(
        await client.post(f"{url}/cancel", headers=bearer(marketer)), 409, "campaign_state_conflict"
    )
    assert_problem(
        await client.get(f"{CAMPAIGNS}/{uuid.uuid4()}", headers=bearer(marketer)), 404, "campaign_not_found"
    )

    past = await create_campaign(
        client, marketer, schedule={"kind": "at", "at": (clock.now() - timedelta(minutes=5)).isoformat()}
    )
    response = await client.post(f"{CAMPAIGNS}/{past['id']}/schedule", headers=bearer(marketer))
    assert_problem(response, 422, "invalid_schedule")
    today = clock.now().date()
    for refused in (
        # Every past day would be drawn for every member only to be skipped as too late.
        {
            "kind": "recurring",
            "time": "09:00",
            "start_date": str(today - timedelta(days=30)),
            "end_date": str(today),
        },
        {
            "kind": "local_time",
            "date": str(today + timedelta(days=400)),
            "time": "09:00",
        },  # over a year ahead
    ):
        later = await client.patch(
            f"{CAMPAIGNS}/{past['id']}", json={"schedule": refused}, headers=bearer(marketer)
        )
        assert later.status_code == 200, later.text
        response = await client.post(f"{CAMPAIGNS}/{past['id']}/schedule", headers=bearer(marketer))
        assert_problem(response, 422, "invalid_schedule")
    listed = (await client.get(CAMPAIGNS, params={"limit": 1}, headers=bearer(marketer))).json()
    assert [c["id"] for c in listed["items"]] == [past["id"]]  # newest first
    more = await client.get(CAMPAIGNS, params={"cursor": listed["next_cursor"]}, headers=bearer(marketer))
    assert [c["id"] for c in more.json()["items"]] == [campaign["id"]]


async def test_the_preview_shows_the_members_own_variant_and_fields(
    client: httpx.AsyncClient, db: Database, clock: SettableClock, marketer: dict[str, Any]
) -> None:
    member = await shopper(client, display_name="山田 花子")
    campaign = await create_campaign(
        client,
        marketer,
        variants=[
            {"key": "A", "title": "{display_name}さん", "body": "{points_balance} points, {stage}"},
            {"key": "B", "title": "{display_name}さん!", "body": "{points_balance} pt"},
        ],
        deep_link="tsunagari://offers/winter",
    )
    member_id = member.session["member"]["id"]
    preview = await client.get(
        f"{CAMPAIGNS}/{campaign['id']}/preview", params={"member_id": member_id}, headers=bearer(marketer)
    )
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["variant"] in {"A", "B"}
    assert body["title"].startswith("山田 花子さん")
    assert body["body"].startswith("0 p")
    assert body["data"]["deep_link"] == "tsunagari://offers/winter"
    again = await client.get(
        f"{CAMPAIGNS}/{campaign['id']}/preview", params={"member_id": member_id}, headers=bearer(marketer)
    )
    assert again.json()["variant"] == body["variant"]  # a member's variant is stable
    missing = await client.get(
        f"{CAMPAIGNS}/{campaign['id']}/preview",
        params={"member_id": str(uuid.uuid4())},
        headers=bearer(marketer),
    )
    assert_problem(missing, 404, "member_not_found")
    assert (
        await client.get(
            f"{CAMPAIGNS}/{campaign['id']}/preview", params={"member_id": "7"}, headers=bearer(marketer)
        )
    ).status_code == 400


async def test_the_report_counts_opens_and_conversions_attributed_to_the_last_opened_push(
    client: httpx.AsyncClient,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
    admin: dict[str, Any],
    marketer: dict[str, Any],
) -> None:
    store = await create_store(client, admin)
    till = await create_terminal(client, admin, store["id"])
    campaign = await create_campaign(client, marketer, control_percent=50)
    campaign_id = uuid.UUID(campaign["id"])
    # One member who will get the message and one the campaign holds back, whatever ids they draw.
    treated = held_back = None
    while treated is None or held_back is None:
        member = await shopper(client)
        member_id = uuid.UUID(member.session["member"]["id"])
        if in_global_control(member_id, TEST_POLICY.global_control_percent):
            continue
        if in_campaign_control(member_id, campaign_id, 50):
            held_back = held_back or member
        else:
            treated = treated or member
    registered = await client.put(
        "/v1/app/devices/current/push-address",
        json={
            "kind": "token",
            "address": "legacy-token-0001",
            "platform": "ios",
            "app_version": "3.2.0",
            "locale": "ja-JP",
            "permission": "granted",
        },
        headers=bearer(treated.session),
    )
    assert registered.status_code == 204, registered.text
    await add_members(db, 20, clock.now())
    await schedule(client, marketer, campaign["id"])
    await draw(db, clock, settings)
    async with dispatcher(settings, fcm, clock, db) as sender:
        await send_all_due(sender)
    (received,) = [m for m in fcm.messages() if m["target"] == "legacy-token-0001"]
    assert received["target_kind"] == "token"

    clock.advance(timedelta(minutes=10))
    opened = await client.post(
        "/v1/app/events",
        json={
            "events": [
                {
                    "client_event_id": "open-1",
                    "kind": "push_opened",
                    "occurred_at": clock.now().isoformat(),
                    "subject": {"type": "campaign", "id": campaign["id"]},
                    "properties": {"delivery_id": received["data"]["delivery_id"]},
                }
            ]
        },
        headers=bearer(treated.session),
    )
    assert opened.status_code == 200, opened.text
    clock.advance(timedelta(hours=1))
    for buyer in (treated, held_back):
        bought = await pos(
            client, clock, till, PURCHASES, sale(3_000, at=clock.now(), code=buyer.code(clock.now()))
        )
        assert bought.status_code == 201, bought.text
    clock.advance(timedelta(hours=80))  # a purchase after the 72-hour window counts for nobody
    late = await pos(
        client, clock, till, PURCHASES, sale(3_000, at=clock.now(), code=held_back.code(clock.now()))
    )
    assert late.status_code == 201, late.text

    marketer = await staff_login(client, db, clock, StaffRole.MARKETER)  # three days later
    report = await client.get(f"{CAMPAIGNS}/{campaign['id']}/report", headers=bearer(marketer))
    assert report.status_code == 200, report.text
    groups = {g["group"]: g for g in report.json()["groups"]}
    assert set(groups) == {"A", "control", "global_control"}
    sent, control = groups["A"], groups["control"]
    assert (sent["opened"], sent["converted"], sent["attributed"]) == (1, 1, 1)
    assert (control["opened"], control["converted"], control["attributed"]) == (0, 1, 0)
    assert sent["sent"] == sent["deliveries"] == len(fcm.messages())
    # Shoppers made while looking for a treated and a held-back member have no push address.
    assert sent["members"] == sent["sent"] + sent["suppressed"].get("no_address", 0)
    assert sent["conversion"]["rate"] == pytest.approx(1 / sent["members"])
    assert 0 < sent["conversion"]["low"] < sent["conversion"]["rate"] < sent["conversion"]["high"]
    expected_lift = (1 / sent["members"]) / (1 / control["members"]) - 1
    assert sent["lift"]["lift"] == pytest.approx(expected_lift)
    assert sent["lift"]["low"] < expected_lift < sent["lift"]["high"]
