"""Push addresses: registered per logged-in device by the app, checked strictly, moved when a phone
changes hands, removed on log-out, revocation and erasure, retired when stale."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from accounts.tables import MemberDevice
from domain.clock import SettableClock
from infra.db import Database
from push.policy import PushPolicy
from push.upkeep import retire_addresses
from tests.integration.factories import PASSWORD, bearer
from tests.integration.problems import assert_problem
from tests.integration.register import Shopper, shopper

ADDRESS = "/v1/app/devices/current/push-address"


def registration(address: str = "fid-0000000001", **overrides: Any) -> dict[str, Any]:
    return {
        "kind": "fid",
        "address": address,
        "platform": "ios",
        "app_version": "3.2.0",
        "locale": "ja-JP",
        "permission": "granted",
        **overrides,
    }


async def device_of(db: Database, member: Shopper) -> MemberDevice:
    member_id = uuid.UUID(member.session["member"]["id"])
    slot = member.session["device"]["slot"]
    async with db.unit_of_work() as uow:
        device = await uow.session.get(MemberDevice, (member_id, slot))
        assert device is not None
        return device


async def register(client: httpx.AsyncClient, member: Shopper, **body: Any) -> httpx.Response:
    return await client.put(ADDRESS, json=registration(**body), headers=bearer(member.session))


async def test_the_app_registers_and_refreshes_its_address(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    member = await shopper(client)
    assert (await register(client, member)).status_code == 204
    device = await device_of(db, member)
    assert (device.push_kind, device.push_address, device.platform) == ("fid", "fid-0000000001", "ios")
    assert (device.notification_permission, device.push_refreshed_at) == ("granted", clock.now())
    clock.advance(timedelta(hours=12))
    refreshed = await register(
        client, member, address="fid-0000000002", permission="provisional", app_version="3.3"
    )
    assert refreshed.status_code == 204
    device = await device_of(db, member)
    assert (device.push_address, device.app_version, device.push_refreshed_at) == (
        "fid-0000000002",
        "3.3",
        clock.now(),
    )


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "apns"},
        {"address": "has spaces in it"},
        {"address": "short"},
        {"address": "x" * 1025},
        {"permission": "maybe"},
        {"platform": "symbian"},
        {"app_version": ""},
        {"app_version": "4.2\u0000"},  # PostgreSQL cannot store NUL: refused before it gets there
        {"locale": 12},
        {"locale": "not a locale"},
        {"colour": "blue"},
    ],
)
async def test_a_bad_registration_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, db: Database, change: dict[str, Any]
) -> None:
    member = await shopper(client)
    assert_problem(
        await client.put(ADDRESS, json={**registration(), **change}, headers=bearer(member.session)),
        400,
        "validation_failed",
    )
    assert (await device_of(db, member)).push_address is None


async def test_only_the_member_themselves_registers(client: httpx.AsyncClient, admin: dict[str, Any]) -> None:
    assert (await client.put(ADDRESS, json=registration())).status_code == 401
    assert (await client.put(ADDRESS, json=registration(), headers=bearer(admin))).status_code == 401


async def test_a_phone_that_changes_hands_takes_its_address_along(
    client: httpx.AsyncClient, db: Database
) -> None:
    first, second = await shopper(client), await shopper(client)
    assert (await register(client, first, address="fid-shared-phone")).status_code == 204
    assert (await register(client, second, address="fid-shared-phone")).status_code == 204
    assert (await device_of(db, first)).push_address is None
    assert (await device_of(db, second)).push_address == "fid-shared-phone"


async def test_two_members_claiming_one_address_at_once_leave_it_with_one(
    client: httpx.AsyncClient, db: Database
) -> None:
    members = [await shopper(client) for _ in range(4)]
    answers = await asyncio.gather(*(register(client, m, address="fid-contested") for m in members))
    assert {a.status_code for a in answers} == {204}
    holders = [m for m in members if (await device_of(db, m)).push_address == "fid-contested"]
    assert len(holders) == 1


async def test_log_out_revoke_and_forget_remove_the_address(client: httpx.AsyncClient, db: Database) -> None:
    leaving = await shopper(client)
    assert (await register(client, leaving, address="fid-logging-out")).status_code == 204
    logged_out = await client.post(
        "/v1/app/sessions/logout",
        json={"refresh_token": leaving.session["tokens"]["refresh_token"]},
        headers=bearer(leaving.session),
    )
    assert logged_out.status_code == 204, logged_out.text
    assert (await device_of(db, leaving)).push_address is None

    lost = await shopper(client)
    assert (await register(client, lost, address="fid-lost-phone")).status_code == 204
    slot = lost.session["device"]["slot"]
    revoked = await client.delete(f"/v1/app/devices/{slot}", headers=bearer(lost.session))
    assert revoked.status_code == 204, revoked.text
    assert (await device_of(db, lost)).push_address is None

    quiet = await shopper(client)
    assert (await register(client, quiet, address="fid-switched-off")).status_code == 204
    assert (await client.delete(ADDRESS, headers=bearer(quiet.session))).status_code == 204
    assert (await device_of(db, quiet)).push_address is None


async def test_erasing_the_account_removes_its_phones(client: httpx.AsyncClient, db: Database) -> None:
    member = await shopper(client)
    assert (await register(client, member, address="fid-erased-member")).status_code == 204
    erased = await client.request(
        "DELETE", "/v1/app/me", json={"password": PASSWORD}, headers=bearer(member.session)
    )
    assert erased.status_code == 204, erased.text
    async with db.unit_of_work() as uow:
        left = await uow.session.execute(
            select(MemberDevice).where(MemberDevice.push_address == "fid-erased-member")
        )
        assert left.first() is None


async def test_an_address_fcm_disabled_comes_back_when_the_app_registers_it_again(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    member = await shopper(client)
    assert (await register(client, member, address="fid-came-back")).status_code == 204
    async with db.unit_of_work() as uow:
        await uow.session.execute(
            update(MemberDevice)
            .where(MemberDevice.push_address == "fid-came-back")
            .values(push_disabled_at=clock.now(), push_disabled_reason="unregistered")
        )
    assert (await register(client, member, address="fid-came-back")).status_code == 204
    device = await device_of(db, member)
    assert (device.push_disabled_at, device.push_disabled_reason) == (None, None)


async def test_addresses_not_refreshed_for_270_days_are_retired(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    stale = await shopper(client)
    start = clock.now()
    assert (await register(client, stale, address="fid-stale-phone")).status_code == 204
    clock.advance(timedelta(days=200))
    fresh = await shopper(client)
    assert (await register(client, fresh, address="fid-fresh-phone")).status_code == 204
    clock.set(start + timedelta(days=271))
    assert await retire_addresses(db, PushPolicy(), clock.now()) == 1
    assert (await device_of(db, stale)).push_address is None
    assert (await device_of(db, fresh)).push_address == "fid-fresh-phone"
