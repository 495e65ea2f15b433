"""Offers in integration tests: drafts, activated offers, a member's list and clips."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import Any

import httpx

from tests.integration.factories import bearer


def offer_draft(today: date, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"Linen week {secrets.token_hex(3)}",
        "terms": {"kind": "bonus_points", "points": 100, "category": "linen"},
        "title": "100 bonus points on linen",
        "body": "Clip this offer and buy any linen item this week.",
        "valid_from": (today - timedelta(days=1)).isoformat(),
        "valid_until": (today + timedelta(days=30)).isoformat(),
    }
    body.update(overrides)
    return body


async def active_offer(
    client: httpx.AsyncClient, staff: dict[str, Any], today: date, **overrides: Any
) -> dict[str, Any]:
    created = await client.post(
        "/v1/console/offers", json=offer_draft(today, **overrides), headers=bearer(staff)
    )
    assert created.status_code == 201, created.text
    activated = await client.post(
        f"/v1/console/offers/{created.json()['id']}/state", json={"state": "active"}, headers=bearer(staff)
    )
    assert activated.status_code == 200, activated.text
    offer: dict[str, Any] = activated.json()
    return offer


async def my_offers(client: httpx.AsyncClient, member: dict[str, Any], **params: str) -> dict[str, Any]:
    response = await client.get("/v1/app/offers", params=params, headers=bearer(member))
    assert response.status_code == 200, response.text
    listed: dict[str, Any] = response.json()
    return listed


async def clip(
    client: httpx.AsyncClient, member: dict[str, Any], offer_id: str, key: str | None = None
) -> httpx.Response:
    headers = {**bearer(member), "Idempotency-Key": key or f"clip-{secrets.token_hex(8)}"}
    return await client.post(f"/v1/app/offers/{offer_id}/activate", headers=headers)
