"""A login and its device live and end together: since a token refresh hands out the device's code secret
(for code key rotations), a refresh token must never outlive the device it came with, whether that device
was revoked, taken over by a later login, or revoked while the refresh was under way."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import insert, update

from accounts import members
from accounts.device_secrets import MAX_DEVICE_SLOT
from accounts.devices import revoke_device
from accounts.tables import MemberDevice
from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from tests.integration.factories import PASSWORD, sign_up, token_issuer
from tests.integration.problems import assert_problem


async def refresh(client: httpx.AsyncClient, session: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/v1/app/sessions/refresh", json={"refresh_token": session["tokens"]["refresh_token"]}
    )


async def log_in(client: httpx.AsyncClient, session: dict[str, Any]) -> dict[str, Any]:
    answer = await client.post(
        "/v1/app/sessions", json={"email": session["member"]["email"], "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    login: dict[str, Any] = answer.json()
    return login


async def test_a_phone_whose_slot_a_later_login_took_cannot_refresh_into_it(
    client: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    first = await sign_up(client)
    member_id = uuid.UUID(first["member"]["id"])
    async with db.unit_of_work() as uow:  # every other slot taken by a newer phone
        await uow.session.execute(
            insert(MemberDevice),
            [
                {
                    "member_id": member_id,
                    "slot": slot,
                    "secret_salt": bytes(16),
                    "created_at": clock.now() + timedelta(minutes=1),
                }
                for slot in range(1, MAX_DEVICE_SLOT + 1)
            ],
        )
    clock.advance(timedelta(minutes=2))
    newest = await log_in(client, first)
    assert newest["device"]["slot"] == first["device"]["slot"]  # the oldest device's slot, taken over

    assert_problem(await refresh(client, first), 401, "refresh_token_revoked")
    renewed = await refresh(client, newest)
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["device"]["code_secret"] == newest["device"]["code_secret"]


async def test_a_device_revoked_with_its_tokens_left_live_cannot_refresh(
    client: httpx.AsyncClient, db: Database
) -> None:
    """What a revoke left before revokes ended the login's tokens too: the refresh itself checks."""
    first = await sign_up(client)
    async with db.unit_of_work() as uow:
        await uow.session.execute(
            update(MemberDevice)
            .where(MemberDevice.member_id == uuid.UUID(first["member"]["id"]))
            .values(revoked_at=MemberDevice.created_at)
        )
    later = await log_in(client, first)
    assert later["device"]["slot"] == first["device"]["slot"]  # the freed slot, given again

    refused = await refresh(client, first)
    assert_problem(refused, 401, "refresh_token_revoked")
    assert "code_secret" not in refused.text
    assert (await refresh(client, later)).status_code == 200


async def test_a_refresh_racing_a_revoke_of_its_device_leaves_no_session(
    client: httpx.AsyncClient, db: Database, settings: Settings, clock: SettableClock
) -> None:
    """The refresh holds its token's row when the revoke comes: the revoke waits, then misses the token
    the refresh issued; that token is refused at its own refresh."""
    phone = await sign_up(client)
    other_phone = await log_in(client, phone)
    issuer = token_issuer(settings, clock)
    revoked = asyncio.Event()

    async def revoke_from_the_other_phone() -> None:
        async with db.unit_of_work() as uow:
            await revoke_device(uow, uuid.UUID(phone["member"]["id"]), phone["device"]["slot"], clock.now())
        revoked.set()

    async with db.unit_of_work() as uow:
        issued = await members.refresh(uow, issuer, phone["tokens"]["refresh_token"])
        revoking = asyncio.create_task(revoke_from_the_other_phone())
        await asyncio.sleep(0.3)
        assert not revoked.is_set()  # waiting on the rows this refresh holds: the two really overlap
    await revoking

    chained = {"tokens": {"refresh_token": issued.refresh_token}}
    assert_problem(await refresh(client, chained), 401, "refresh_token_revoked")
    assert (await refresh(client, other_phone)).status_code == 200
