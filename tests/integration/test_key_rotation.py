"""Rotating the signing keys (docs/operations.md, "Rotating keys"): what the previous keys signed keeps
working until they retire, what they sign after that is refused, and everything new names the new key.

`client` speaks to the app as it was before the rotation; each test serves the rotated app beside it."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
import msgspec
import pytest

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings, env_for_children, load_settings
from tests.conftest import serving
from tests.integration.factories import (
    PASSWORD,
    TerminalCredentials,
    bearer,
    sign_up,
    signed_headers,
    staff_login,
)
from tests.integration.problems import assert_problem
from tests.integration.register import Shopper, pos, register, shopper

OVERLAP = timedelta(hours=1)
NEW_KEY_ID = "2027-01"
RESOLVE = "/v1/pos/members/resolve"
TERMINAL = "/v1/pos/terminal"
# Each signing key's setting, its id's and its previous keys'.
KEY_FIELDS = (
    ("jwt_signing_key", "jwt_signing_key_id", "jwt_signing_previous_keys"),
    ("code_signing_key", "code_signing_key_id", "code_signing_previous_keys"),
    ("terminal_key", "terminal_key_id", "terminal_previous_keys"),
)


def rotated(settings: Settings, retire_at: datetime) -> Settings:
    """`settings` after every key was replaced by a new one, the old ones accepted until `retire_at`."""
    changes: dict[str, object] = {}
    for key, key_id, previous in KEY_FIELDS:
        changes[key] = secrets.token_urlsafe(48)
        changes[key_id] = NEW_KEY_ID
        changes[previous] = (msgspec.structs.replace(settings.key_ring(key).current, retire_at=retire_at),)
    return load_settings(environ=env_for_children(settings), **changes)


@pytest.fixture
async def after_rotation(settings: Settings, clock: SettableClock) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app restarted with new keys, the previous ones retiring in OVERLAP."""
    with serving(rotated(settings, clock.now() + OVERLAP), clock) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield http


def key_id_of(token: str) -> Any:
    return jwt.get_unverified_header(token).get("kid")


async def test_sessions_outlive_a_jwt_key_rotation_and_new_tokens_name_the_new_key(
    client: httpx.AsyncClient, after_rotation: httpx.AsyncClient, clock: SettableClock
) -> None:
    before = await sign_up(client)
    assert key_id_of(before["tokens"]["access_token"]) == "k1"
    assert (await after_rotation.get("/v1/app/me", headers=bearer(before))).status_code == 200

    refreshed = await after_rotation.post(
        "/v1/app/sessions/refresh", json={"refresh_token": before["tokens"]["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    new_token = refreshed.json()["access_token"]
    assert key_id_of(new_token) == NEW_KEY_ID
    assert key_id_of((await sign_up(after_rotation))["tokens"]["access_token"]) == NEW_KEY_ID

    clock.advance(OVERLAP)
    assert_problem(
        await after_rotation.get("/v1/app/me", headers=bearer(before)), 401, "access_token_invalid"
    )
    assert (await after_rotation.get("/v1/app/me", headers=bearer(new_token))).status_code == 200


async def test_offline_member_codes_of_the_previous_key_pay_until_it_retires_and_the_app_can_renew(
    client: httpx.AsyncClient,
    after_rotation: httpx.AsyncClient,
    admin: dict[str, Any],
    clock: SettableClock,
) -> None:
    terminal = await register(after_rotation, admin)
    member = await shopper(client)
    assert member.session["device"]["code_key_id"] == "k1"
    resolved = await pos(after_rotation, clock, terminal, RESOLVE, {"code": member.code(clock.now())})
    assert resolved.status_code == 200, resolved.text

    refreshed = await refresh(after_rotation, member.session)
    assert refreshed.status_code == 200, refreshed.text
    device = refreshed.json()["device"]
    assert (device["slot"], device["code_key_id"]) == (member.session["device"]["slot"], NEW_KEY_ID)
    assert device["code_secret"] != member.session["device"]["code_secret"]
    again = await refresh(after_rotation, refreshed.json())
    assert again.json()["device"] == device  # same salt: the secret is derived again, nothing written
    renewed = Shopper({**member.session, "device": device})
    assert (
        await pos(after_rotation, clock, terminal, RESOLVE, {"code": renewed.code(clock.now())})
    ).status_code == 200

    clock.advance(OVERLAP)
    assert_problem(
        await pos(after_rotation, clock, terminal, RESOLVE, {"code": member.code(clock.now())}),
        422,
        "invalid_member_code",
    )
    assert (
        await pos(after_rotation, clock, terminal, RESOLVE, {"code": renewed.code(clock.now())})
    ).status_code == 200


async def test_only_a_refresh_hands_out_a_code_secret_and_a_revoked_device_refreshes_no_more(
    client: httpx.AsyncClient, after_rotation: httpx.AsyncClient
) -> None:
    """An access token alone (a stolen one, say) gets the current code, never the secret that mints them;
    a device revoked from another phone can no longer refresh its session, and so gets no secret either."""
    member = await shopper(client)
    other_phone = await after_rotation.post(
        "/v1/app/sessions", json={"email": member.session["member"]["email"], "password": PASSWORD}
    )
    assert other_phone.status_code == 200, other_phone.text
    for path in ("/v1/app/member-code", "/v1/app/devices", "/v1/app/me", "/v1/app/points"):
        answer = await after_rotation.get(path, headers=bearer(member.session))
        assert answer.status_code == 200, (path, answer.text)
        assert "code_secret" not in answer.text, path
    slot = member.session["device"]["slot"]
    revoked = await after_rotation.delete(f"/v1/app/devices/{slot}", headers=bearer(other_phone.json()))
    assert revoked.status_code == 204, revoked.text
    assert_problem(await refresh(after_rotation, member.session), 401, "refresh_token_revoked")
    assert (await refresh(after_rotation, other_phone.json())).json()["device"]["code_key_id"] == NEW_KEY_ID


async def refresh(client: httpx.AsyncClient, session: dict[str, Any]) -> httpx.Response:
    tokens = session.get("tokens", session)
    return await client.post("/v1/app/sessions/refresh", json={"refresh_token": tokens["refresh_token"]})


async def identify(
    client: httpx.AsyncClient, clock: SettableClock, terminal: TerminalCredentials
) -> httpx.Response:
    stamp = int(clock.now().timestamp())
    return await client.get(TERMINAL, headers=signed_headers(terminal, "GET", TERMINAL, timestamp=stamp))


@pytest.mark.logs_errors
async def test_terminals_keep_working_until_the_previous_terminal_key_retires_then_need_a_new_secret(
    after_rotation: httpx.AsyncClient,
    terminal: TerminalCredentials,
    db: Database,
    clock: SettableClock,
) -> None:
    assert (await identify(after_rotation, clock, terminal)).status_code == 200

    clock.advance(OVERLAP)
    assert_problem(await identify(after_rotation, clock, terminal), 401, "pos_signature_invalid")
    admin = await staff_login(after_rotation, db, clock)
    reissued = await after_rotation.post(
        f"/v1/console/terminals/{terminal.terminal_id}/secret", headers=bearer(admin)
    )
    assert reissued.status_code == 200, reissued.text
    body = reissued.json()
    assert (body["key_id"], body["terminal"]["server_key_id"]) == (terminal.key_id, NEW_KEY_ID)
    assert body["secret"] != terminal.secret
    assert (
        await identify(after_rotation, clock, replace(terminal, secret=body["secret"]))
    ).status_code == 200
    listed = await after_rotation.get(
        f"/v1/console/stores/{terminal.store_id}/terminals", headers=bearer(admin)
    )
    assert [t["server_key_id"] for t in listed.json()["items"]] == [NEW_KEY_ID]


async def test_reissuing_a_secret_refuses_the_old_one_at_once_and_new_terminals_use_the_current_key(
    client: httpx.AsyncClient, terminal: TerminalCredentials, admin: dict[str, Any], clock: SettableClock
) -> None:
    reissued = await client.post(
        f"/v1/console/terminals/{terminal.terminal_id}/secret", headers=bearer(admin)
    )
    assert reissued.status_code == 200, reissued.text
    assert reissued.json()["terminal"]["server_key_id"] == "k1"
    assert_problem(await identify(client, clock, terminal), 401, "pos_signature_invalid")
    assert (
        await identify(client, clock, replace(terminal, secret=reissued.json()["secret"]))
    ).status_code == 200
    unknown = await client.post(f"/v1/console/terminals/{uuid.uuid4()}/secret", headers=bearer(admin))
    assert_problem(unknown, 404, "terminal_not_found")


async def test_a_terminal_created_after_the_rotation_is_issued_under_the_new_key(
    after_rotation: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock
) -> None:
    terminal = await register(after_rotation, admin)
    clock.advance(OVERLAP)
    assert (await identify(after_rotation, clock, terminal)).status_code == 200
