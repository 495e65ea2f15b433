"""Test data made through the public API (and the service layer where no API exists by design)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from accounts.rules import StaffRole
from accounts.sessions import TokenIssuer
from accounts.staff import create_staff
from domain.clock import Clock
from infra.db import Database
from infra.settings import Settings
from stores.pos_signature import signature_headers

PASSWORD = "correct horse battery"


def unique_email(label: str = "member") -> str:
    return f"{label}-{secrets.token_hex(6)}@example.jp"


def token_issuer(settings: Settings, clock: Clock) -> TokenIssuer:
    """The server's issuer, for tokens a test issues where a racing login or refresh would have."""
    return TokenIssuer(
        signing_keys=settings.key_ring("jwt_signing_key"),
        code_signing_keys=settings.key_ring("code_signing_key"),
        access_ttl=timedelta(minutes=15),
        refresh_ttl=timedelta(days=30),
        clock=clock,
    )


async def sign_up(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    body = {"email": unique_email(), "password": PASSWORD, "display_name": "Hanako Yamada", **overrides}
    response = await client.post("/v1/app/members", json=body)
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


def bearer(session_or_token: dict[str, Any] | str) -> dict[str, str]:
    token = (
        session_or_token if isinstance(session_or_token, str) else session_or_token["tokens"]["access_token"]
    )
    return {"Authorization": f"Bearer {token}"}


async def staff_login(
    client: httpx.AsyncClient, db: Database, clock: Clock, role: StaffRole = StaffRole.ADMIN
) -> dict[str, Any]:
    email = unique_email(role.value)
    async with db.unit_of_work() as uow:
        await create_staff(uow, clock, email, PASSWORD, f"Test {role.value}", role)
    response = await client.post("/v1/console/sessions", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    session: dict[str, Any] = response.json()
    return session


def store_draft(**overrides: Any) -> dict[str, Any]:
    return {
        "code": f"TST-{secrets.token_hex(3).upper()}",
        "name": "無印良品 銀座",
        "address": "東京都中央区銀座3-3-5",
        "latitude": 35.6717,
        "longitude": 139.7650,
        "time_zone": "Asia/Tokyo",
        **overrides,
    }


async def create_store(client: httpx.AsyncClient, admin: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    response = await client.post("/v1/console/stores", json=store_draft(**overrides), headers=bearer(admin))
    assert response.status_code == 201, response.text
    store: dict[str, Any] = response.json()
    return store


@dataclass(frozen=True)
class TerminalCredentials:
    terminal_id: str
    store_id: str
    key_id: str
    secret: str


async def create_terminal(
    client: httpx.AsyncClient, admin: dict[str, Any], store_id: str, name: str = "Register 1"
) -> TerminalCredentials:
    response = await client.post(
        f"/v1/console/stores/{store_id}/terminals", json={"name": name}, headers=bearer(admin)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return TerminalCredentials(body["terminal"]["id"], store_id, body["key_id"], body["secret"])


def signed_headers(
    terminal: TerminalCredentials,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    timestamp: int | None = None,
    secret: str | None = None,
    nonce: str | None = None,
    legacy: bool = False,
) -> dict[str, str]:
    """Headers of a request signed as docs/pos-integration.md says: with `nonce` (a fresh one if None),
    or, `legacy`, in the previous release's form without one."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signed_nonce = None if legacy else nonce or secrets.token_hex(16)
    signed = signature_headers(
        terminal.key_id, secret or terminal.secret, method, path, body, stamp, signed_nonce
    )
    return {**signed, "Content-Type": "application/json"}


async def pos_post(
    client: httpx.AsyncClient, terminal: TerminalCredentials, path: str, payload: dict[str, Any]
) -> httpx.Response:
    body = json.dumps(payload).encode()
    return await client.post(path, content=body, headers=signed_headers(terminal, "POST", path, body))
