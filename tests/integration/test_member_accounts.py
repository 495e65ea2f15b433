"""Member sign-up, login, token rotation, logout, profile and erasure through the HTTP API."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from accounts.tables import Member, RefreshToken
from domain.clock import SettableClock
from domain.keys import SigningKey
from domain.tokens import Audience, issue_access_token
from infra.db import Database
from infra.settings import Settings
from tests.integration.factories import PASSWORD, bearer, sign_up, unique_email
from tests.integration.problems import assert_problem


async def test_sign_up_returns_profile_and_tokens(client: httpx.AsyncClient) -> None:
    email = unique_email()
    session = await sign_up(client, email=email.upper(), time_zone="Europe/Paris", locale="fr-FR")
    member = session["member"]
    assert member["email"] == email
    assert member["time_zone"] == "Europe/Paris"
    assert member["locale"] == "fr-FR"
    assert len(member["card_number"]) == 16
    me = await client.get("/v1/app/me", headers=bearer(session))
    assert me.status_code == 200
    assert me.json() == member


async def test_password_is_stored_as_argon2id(client: httpx.AsyncClient, db: Database) -> None:
    session = await sign_up(client)
    async with db.unit_of_work() as uow:
        stored = await uow.session.get(Member, uuid.UUID(session["member"]["id"]))
    assert stored is not None
    assert stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash


async def test_sign_up_rejects_bad_input_without_creating_anything(
    client: httpx.AsyncClient, db: Database
) -> None:
    cases = [
        ({"email": "not-an-email", "password": PASSWORD, "display_name": "A"}, 422, "invalid_email"),
        ({"email": unique_email(), "password": "short", "display_name": "A"}, 422, "weak_password"),
        (
            {"email": unique_email(), "password": PASSWORD, "display_name": "A", "time_zone": "Mars/Olympus"},
            422,
            "invalid_time_zone",
        ),
        ({"email": unique_email(), "password": PASSWORD, "display_name": ""}, 400, "validation_failed"),
        ({"email": unique_email(), "password": PASSWORD}, 400, "validation_failed"),
        (
            {"email": unique_email(), "password": PASSWORD, "display_name": "A", "admin": True},
            400,
            "validation_failed",
        ),
    ]
    for body, status, code in cases:
        assert_problem(await client.post("/v1/app/members", json=body), status, code)
    malformed = await client.post(
        "/v1/app/members", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(malformed, 400, "bad_request")
    async with db.unit_of_work() as uow:
        assert (await uow.session.execute(select(Member))).first() is None


async def test_email_can_sign_up_only_once_even_concurrently(client: httpx.AsyncClient) -> None:
    email = unique_email()
    body = {"email": email, "password": PASSWORD, "display_name": "Twin"}
    responses = await asyncio.gather(*(client.post("/v1/app/members", json=body) for _ in range(5)))
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "email_taken")


async def test_login_with_right_and_wrong_password(client: httpx.AsyncClient) -> None:
    session = await sign_up(client)
    email = session["member"]["email"]
    ok = await client.post("/v1/app/sessions", json={"email": email, "password": PASSWORD})
    assert ok.status_code == 200
    assert ok.json()["member"]["id"] == session["member"]["id"]
    wrong = await client.post("/v1/app/sessions", json={"email": email, "password": "wrong password!"})
    assert_problem(wrong, 401, "invalid_credentials")
    unknown = await client.post("/v1/app/sessions", json={"email": unique_email(), "password": PASSWORD})
    assert_problem(unknown, 401, "invalid_credentials")


async def test_login_attempts_are_limited_per_account(client: httpx.AsyncClient, settings: Settings) -> None:
    session = await sign_up(client)
    email = session["member"]["email"]
    for _ in range(settings.login_attempts_per_window):
        wrong = await client.post("/v1/app/sessions", json={"email": email, "password": "wrong password!"})
        assert_problem(wrong, 401, "invalid_credentials")
    blocked = await client.post("/v1/app/sessions", json={"email": email, "password": PASSWORD})
    assert_problem(blocked, 429, "too_many_login_attempts")
    # The time left in the window that started with the first attempt, never more than the window.
    assert 0 < int(blocked.headers["retry-after"]) <= settings.login_window_s


async def test_refresh_rotates_and_old_refresh_token_cannot_be_used_twice(client: httpx.AsyncClient) -> None:
    session = await sign_up(client)
    first = session["tokens"]["refresh_token"]
    rotated = await client.post("/v1/app/sessions/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["refresh_token"]
    assert second != first
    me = await client.get("/v1/app/me", headers=bearer(rotated.json()["access_token"]))
    assert me.status_code == 200


async def test_reused_refresh_token_revokes_the_whole_family(client: httpx.AsyncClient) -> None:
    session = await sign_up(client)
    first = session["tokens"]["refresh_token"]
    second = (await client.post("/v1/app/sessions/refresh", json={"refresh_token": first})).json()[
        "refresh_token"
    ]
    reused = await client.post("/v1/app/sessions/refresh", json={"refresh_token": first})
    assert_problem(reused, 401, "refresh_token_reused")
    # The legitimate holder's newer token died with the family: the thief's replay ended both sessions.
    after = await client.post("/v1/app/sessions/refresh", json={"refresh_token": second})
    assert_problem(after, 401, "refresh_token_revoked")


async def test_concurrent_refreshes_with_one_token_rotate_once(client: httpx.AsyncClient) -> None:
    session = await sign_up(client)
    token = session["tokens"]["refresh_token"]
    responses = await asyncio.gather(
        *(client.post("/v1/app/sessions/refresh", json={"refresh_token": token}) for _ in range(6))
    )
    assert [r.status_code for r in responses].count(200) == 1
    assert all(
        r.json()["code"] in {"refresh_token_reused", "refresh_token_revoked"}
        for r in responses
        if r.status_code != 200
    )


async def test_expired_refresh_token_is_refused(client: httpx.AsyncClient, db: Database) -> None:
    session = await sign_up(client)
    async with db.unit_of_work() as uow:
        await uow.session.execute(
            update(RefreshToken)
            .where(RefreshToken.member_id == uuid.UUID(session["member"]["id"]))
            .values(expires_at=RefreshToken.issued_at - timedelta(seconds=1))
        )
    response = await client.post(
        "/v1/app/sessions/refresh", json={"refresh_token": session["tokens"]["refresh_token"]}
    )
    assert_problem(response, 401, "refresh_token_expired")


async def test_expired_and_forged_access_tokens_are_refused(
    client: httpx.AsyncClient, settings: Settings, clock: SettableClock
) -> None:
    session = await sign_up(client)
    clock.advance(timedelta(seconds=settings.access_token_ttl_s + 1))
    assert_problem(await client.get("/v1/app/me", headers=bearer(session)), 401, "access_token_expired")
    forged, _ = issue_access_token(
        SigningKey(key_id=settings.jwt_signing_key_id, secret="another key " * 4),
        uuid.UUID(session["member"]["id"]),
        Audience.MEMBER,
        None,
        clock.now(),
        timedelta(hours=1),
    )
    assert_problem(await client.get("/v1/app/me", headers=bearer(forged)), 401, "access_token_invalid")
    assert_problem(await client.get("/v1/app/me"), 401, "access_token_invalid")
    assert_problem(
        await client.get("/v1/app/me", headers={"Authorization": "Basic abc"}), 401, "access_token_invalid"
    )


async def test_logout_revokes_the_refresh_token(client: httpx.AsyncClient) -> None:
    session = await sign_up(client)
    refresh_token = session["tokens"]["refresh_token"]
    out = await client.post(
        "/v1/app/sessions/logout", json={"refresh_token": refresh_token}, headers=bearer(session)
    )
    assert out.status_code == 204
    again = await client.post("/v1/app/sessions/refresh", json={"refresh_token": refresh_token})
    assert_problem(again, 401, "refresh_token_revoked")


async def test_profile_update_validates_and_persists(client: httpx.AsyncClient) -> None:
    session = await sign_up(client)
    changed = await client.patch(
        "/v1/app/me",
        json={"display_name": "Hanako Y.", "time_zone": "America/New_York"},
        headers=bearer(session),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["display_name"] == "Hanako Y."
    assert changed.json()["time_zone"] == "America/New_York"
    assert changed.json()["locale"] == "ja-JP"
    bad = await client.patch("/v1/app/me", json={"time_zone": "Tokyo"}, headers=bearer(session))
    assert_problem(bad, 422, "invalid_time_zone")
    me = await client.get("/v1/app/me", headers=bearer(session))
    assert me.json()["time_zone"] == "America/New_York"


async def test_account_deletion_erases_personal_data_and_sessions(
    client: httpx.AsyncClient, db: Database
) -> None:
    session = await sign_up(client)
    member_id = uuid.UUID(session["member"]["id"])
    wrong = await client.request(
        "DELETE", "/v1/app/me", json={"password": "not my password"}, headers=bearer(session)
    )
    assert_problem(wrong, 401, "invalid_credentials")
    deleted = await client.request(
        "DELETE", "/v1/app/me", json={"password": PASSWORD}, headers=bearer(session)
    )
    assert deleted.status_code == 204
    async with db.unit_of_work() as uow:
        row = await uow.session.get(Member, member_id)
    assert row is not None  # kept as the anonymous owner of ledger history
    assert (row.email, row.password_hash, row.display_name) == (None, None, None)
    assert row.erased_at is not None
    assert_problem(await client.get("/v1/app/me", headers=bearer(session)), 404, "member_not_found")
    refresh = await client.post(
        "/v1/app/sessions/refresh", json={"refresh_token": session["tokens"]["refresh_token"]}
    )
    assert_problem(refresh, 401, "refresh_token_revoked")
    login = await client.post(
        "/v1/app/sessions", json={"email": session["member"]["email"], "password": PASSWORD}
    )
    assert_problem(login, 401, "invalid_credentials")
    # The address is free again for a new account.
    await sign_up(client, email=session["member"]["email"])


async def test_a_sign_up_retried_after_a_lost_answer_leads_to_a_session(client: httpx.AsyncClient) -> None:
    """The documented safe retry: the same sign-up again is 409 email_taken, and logging in with the same
    email and password then gives the app its session (and its own device)."""
    body = {"email": unique_email(), "password": PASSWORD, "display_name": "Hanako Yamada"}
    first = await client.post("/v1/app/members", json=body)
    assert first.status_code == 201, first.text  # ... but say the phone never received this
    retried = await client.post("/v1/app/members", json=body)
    assert_problem(retried, 409, "email_taken")
    login = await client.post("/v1/app/sessions", json={"email": body["email"], "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert login.json()["member"]["id"] == first.json()["member"]["id"]
    assert login.json()["device"]["slot"] != first.json()["device"]["slot"]


async def test_revoking_a_device_twice_succeeds_and_a_slot_never_used_is_not_found(
    client: httpx.AsyncClient,
) -> None:
    session = await sign_up(client)
    slot = session["device"]["slot"]
    for _ in range(2):
        response = await client.delete(f"/v1/app/devices/{slot}", headers=bearer(session))
        assert response.status_code == 204, response.text
    assert_problem(
        await client.delete(f"/v1/app/devices/{slot + 1}", headers=bearer(session)), 404, "device_not_found"
    )
