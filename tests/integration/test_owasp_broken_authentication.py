"""OWASP API2:2023 Broken authentication: on every operation that takes a bearer token, a token that is
expired, tampered with, unsigned, signed with another key or carried elsewhere than the Authorization
header is refused, and writes nothing; refresh tokens work once, for their own surface, and not for a
disabled staff account; a disabled account's access token is refused and a demoted admin's loses the admin's
actions at once, before it expires; a demoted admin's next token is a marketer's.

Proved elsewhere and not repeated: member refresh-token reuse revoking the family, concurrent refreshes,
expired refresh tokens, logout (test_member_accounts.py); a member refresh token refused by the console
(test_member_isolation.py); a token of one audience refused by the other surfaces, every route
(test_owasp_broken_function_level_authorization.py); console cookie sessions after logout, demotion,
disabling and a working day (test_console_attacks.py); POS signatures: wrong secret, stale or future time,
replays, nonces, downgrades, disabled terminals (test_pos_signatures.py); login limits
(test_owasp_unrestricted_resource_consumption.py).
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import update

from accounts.rules import StaffRole
from accounts.tables import Staff
from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from tests.integration.db_fingerprint import assert_nothing_written, fingerprint
from tests.integration.factories import bearer, store_draft
from tests.integration.owasp_support import (
    World,
    described_operations,
    make_world,
    valid_body,
    valid_query,
)
from tests.integration.problems import assert_problem


@pytest.fixture
async def world(
    client: httpx.AsyncClient, admin: dict[str, Any], marketer: dict[str, Any], clock: SettableClock
) -> World:
    return await make_world(client, admin, marketer, clock.now().date())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decoded(part: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return _decoded(header), _decoded(payload), signature


def _token(header: dict[str, Any], payload: dict[str, Any], signature: str) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}.{signature}"


def tampered(token: str, **claims: Any) -> str:
    """The token with claims changed and the original signature kept."""
    header, payload, signature = _parts(token)
    return _token(header, payload | claims, signature)


def unsigned(token: str, **claims: Any) -> str:
    """The token's claims under `alg: none`, with no signature."""
    header, payload, _ = _parts(token)
    return _token(header | {"alg": "none"}, payload | claims, "")


def signed_elsewhere(token: str, **claims: Any) -> str:
    """The token's claims signed with a key that is not the server's."""
    _, payload, _ = _parts(token)
    return jwt.encode(payload | claims, "not the server's key, but long enough " * 2, algorithm="HS256")


def resigned(token: str, key: str, **claims: Any) -> str:
    """The token's claims changed (None: left out) and signed with `key`."""
    _, payload, _ = _parts(token)
    changed = {name: value for name, value in (payload | claims).items() if value is not None}
    return jwt.encode(changed, key, algorithm="HS256")


def bad_tokens(world: World, surface: str, key: str) -> dict[str, str]:
    """Forged tokens, and tokens the server's own key signed whose claims must still be refused."""
    if surface == "member":
        token = world.callers.member.session["tokens"]["access_token"]
        other = {"sub": world.other_member_id}
    else:
        token = world.callers.marketer["tokens"]["access_token"]
        other = {"role": "admin"}
    return {
        "claims changed, signature kept": tampered(token, **other),
        "alg none": unsigned(token, **other),
        "signed with another key": signed_elsewhere(token, **other),
        "signed by the server without an expiry": resigned(token, key, exp=None),
        "signed by the server for another issuer": resigned(token, key, iss="someone-else"),
        "signed by the server without an audience": resigned(token, key, aud=None),
        "signed by the server, naming no uuid": resigned(token, key, sub="admin"),
        "truncated": token[:-5],
        "garbage": "e30.e30.",
    }


async def test_every_bearer_operation_refuses_forged_tokens_and_writes_nothing(
    client: httpx.AsyncClient, world: World, db: Database, settings: Settings, clock: SettableClock
) -> None:
    operations, _ = described_operations(settings, clock)
    bearer_operations = [op for op in operations if op.security in {"member", "staff"}]
    key = settings.key_ring("jwt_signing_key").current.secret
    # The control: re-signed unchanged, a token still works, so each refusal below is its change's.
    for path, session in (
        ("/v1/app/me", world.callers.member.session),
        ("/v1/console/me", world.callers.admin),
    ):
        control = resigned(session["tokens"]["access_token"], key)
        assert (await client.get(path, headers={"Authorization": f"Bearer {control}"})).status_code == 200
    before = await fingerprint(db)
    wrong = []
    for operation in bearer_operations:
        for how, token in bad_tokens(
            world, operation.security or "", settings.key_ring("jwt_signing_key").current.secret
        ).items():
            answer = await client.request(
                operation.method,
                world.path(operation),
                json=valid_body(operation, world),
                params=valid_query(operation, world),
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"forged-{uuid.uuid4()}"},
            )
            if answer.status_code != 401 or answer.json().get("code") != "access_token_invalid":
                wrong.append(f"{operation} with a token {how}: {answer.status_code} {answer.text[:100]}")
    assert wrong == [], "\n".join(wrong)
    await assert_nothing_written(db, before)


async def test_every_bearer_operation_refuses_an_expired_token_and_one_carried_elsewhere(
    client: httpx.AsyncClient, world: World, db: Database, settings: Settings, clock: SettableClock
) -> None:
    """A token in the query string, a cookie or another scheme is no bearer token; one whose time is up is
    expired on every route alike."""
    operations, _ = described_operations(settings, clock)
    member_token = world.callers.member.session["tokens"]["access_token"]
    staff_token = world.callers.admin["tokens"]["access_token"]
    wrong = []
    before = await fingerprint(db)
    for operation in (op for op in operations if op.security in {"member", "staff"}):
        token = member_token if operation.security == "member" else staff_token
        for how, headers, params in [
            ("in the query", {}, {"access_token": token}),
            ("in a cookie", {"Cookie": f"access_token={token}"}, {}),
            ("as Basic", {"Authorization": f"Basic {token}"}, {}),
            ("without a scheme", {"Authorization": token}, {}),
        ]:
            answer = await client.request(
                operation.method,
                world.path(operation),
                json=valid_body(operation, world),
                params=valid_query(operation, world) | params,
                headers=headers,
            )
            if answer.status_code != 401:
                wrong.append(f"{operation} with the token {how}: {answer.status_code}")
    clock.advance(timedelta(seconds=settings.access_token_ttl_s + 1))
    for operation in (op for op in operations if op.security in {"member", "staff"}):
        token = member_token if operation.security == "member" else staff_token
        answer = await client.request(
            operation.method,
            world.path(operation),
            json=valid_body(operation, world),
            params=valid_query(operation, world),
            headers={"Authorization": f"Bearer {token}"},
        )
        if answer.status_code != 401 or answer.json().get("code") != "access_token_expired":
            wrong.append(f"{operation} with an expired token: {answer.status_code} {answer.text[:100]}")
    assert wrong == [], "\n".join(wrong)
    await assert_nothing_written(db, before)


async def test_a_reused_staff_refresh_token_ends_the_whole_login(
    client: httpx.AsyncClient, world: World
) -> None:
    first = world.callers.marketer["tokens"]["refresh_token"]
    rotated = await client.post("/v1/console/sessions/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200, rotated.text
    assert_problem(
        await client.post("/v1/console/sessions/refresh", json={"refresh_token": first}),
        401,
        "refresh_token_reused",
    )
    after = await client.post(
        "/v1/console/sessions/refresh", json={"refresh_token": rotated.json()["refresh_token"]}
    )
    assert_problem(after, 401, "refresh_token_revoked")


async def test_a_staff_refresh_token_refuses_the_app_and_a_disabled_account(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    staff = world.callers.admin
    app = await client.post(
        "/v1/app/sessions/refresh", json={"refresh_token": staff["tokens"]["refresh_token"]}
    )
    assert_problem(app, 401, "refresh_token_invalid")
    async with db.unit_of_work() as uow:
        await uow.session.execute(
            update(Staff)
            .where(Staff.id == uuid.UUID(staff["staff"]["id"]))
            .values(disabled_at=Staff.created_at)
        )
    refused = await client.post(
        "/v1/console/sessions/refresh", json={"refresh_token": staff["tokens"]["refresh_token"]}
    )
    assert_problem(refused, 401, "staff_disabled")
    still_valid = await client.get("/v1/console/stores", headers=bearer(staff))
    assert_problem(still_valid, 401, "staff_disabled")


async def test_a_demoted_admins_next_token_carries_the_new_role(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    admin = world.callers.admin
    async with db.unit_of_work() as uow:
        await uow.session.execute(
            update(Staff).where(Staff.id == uuid.UUID(admin["staff"]["id"])).values(role=StaffRole.MARKETER)
        )
    issued_to_an_admin = await client.post("/v1/console/stores", json=store_draft(), headers=bearer(admin))
    assert_problem(issued_to_an_admin, 403, "staff_role_required")
    refreshed = await client.post(
        "/v1/console/sessions/refresh", json={"refresh_token": admin["tokens"]["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    token = refreshed.json()["access_token"]
    assert _parts(token)[1]["role"] == "marketer"
    answer = await client.post(
        "/v1/console/stores", json=store_draft(), headers={"Authorization": f"Bearer {token}"}
    )
    assert_problem(answer, 403, "staff_role_required")
