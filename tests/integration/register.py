"""Test helpers for the register: a store with a terminal, a member with a device, signed POS posts."""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from accounts.device_secrets import secret_from_app
from domain.clock import Clock
from points.member_codes import member_code
from tests.integration.factories import (
    PASSWORD,
    TerminalCredentials,
    bearer,
    create_store,
    create_terminal,
    sign_up,
    signed_headers,
)


@dataclass(frozen=True)
class Shopper:
    session: dict[str, Any]

    @property
    def card_number(self) -> str:
        return str(self.session["member"]["card_number"])

    def code(self, at: datetime) -> str:
        """What the app computes offline from the device secret it got at login."""
        device = self.session["device"]
        return member_code(self.card_number, device["slot"], secret_from_app(device["code_secret"]), at)


async def shopper(client: httpx.AsyncClient, **overrides: Any) -> Shopper:
    return Shopper(await sign_up(client, **overrides))


async def log_in_again(client: httpx.AsyncClient, member: Shopper) -> Shopper:
    """A new login (and device) of the member: sessions made before the clock moved a year are stale."""
    response = await client.post(
        "/v1/app/sessions", json={"email": member.session["member"]["email"], "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return Shopper(response.json())


async def register(
    client: httpx.AsyncClient, admin: dict[str, Any], code: str | None = None
) -> TerminalCredentials:
    store = await create_store(client, admin, **({"code": code} if code else {}))
    return await create_terminal(client, admin, store["id"])


def sale(
    total: int,
    *,
    at: datetime,
    code: str | None = None,
    redeem: int = 0,
    receipt: str | None = None,
    lines: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "receipt_id": receipt or f"R-{secrets.token_hex(6)}",
        "sold_at": at.isoformat(),
        "currency": "JPY",
        "total_minor": total,
        "lines": lines
        or [
            {
                "line_no": 1,
                "sku": "4550002",
                "category": "stationery",
                "quantity": 1,
                "unit_price_minor": total,
            }
        ],
        "points_to_redeem": redeem,
    }
    if code is not None:
        body["member_code"] = code
    return body


_attempts = itertools.count()


async def pos(
    client: httpx.AsyncClient,
    clock: Clock,
    terminal: TerminalCredentials,
    path: str,
    payload: dict[str, Any],
    *,
    key: str | None = None,
    timestamp: int | None = None,
) -> httpx.Response:
    """A signed POS write, timed by the server's (test) clock. Successive attempts get distinct
    timestamps within the accepted window, as a POS re-signing each attempt would."""
    body = json.dumps(payload).encode()
    stamp = timestamp if timestamp is not None else int(clock.now().timestamp()) - next(_attempts) % 200
    headers = signed_headers(terminal, "POST", path, body, timestamp=stamp)
    headers["Idempotency-Key"] = key or f"key-{secrets.token_hex(8)}"
    return await client.post(path, content=body, headers=headers)


def days_ago(now: datetime, days: float) -> datetime:
    return now - timedelta(days=days)


def posted(response: httpx.Response) -> dict[str, Any]:
    """The body of a POS write that must have been recorded."""
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def refund(receipt: str, at: datetime, **what: Any) -> dict[str, Any]:
    return {
        "refund_receipt_id": f"RET-{secrets.token_hex(5)}",
        "original_receipt_id": receipt,
        "refunded_at": at.isoformat(),
        **what,
    }


GINZA = (35.6717, 139.7650)  # where factories.store_draft puts a store


async def check_in_at_ginza(
    client: httpx.AsyncClient, member: Shopper, store_id: str, clock: Clock
) -> httpx.Response:
    body = {
        "store_id": store_id,
        "latitude": GINZA[0],
        "longitude": GINZA[1],
        "accuracy_m": 20,
        "fix_at": clock.now().isoformat(),
        "trigger": "user_tap",
    }
    headers = bearer(member.session) | {"Idempotency-Key": f"check-in-{secrets.token_hex(8)}"}
    return await client.post("/v1/app/check-ins", json=body, headers=headers)
