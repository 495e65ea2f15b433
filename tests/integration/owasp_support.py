"""The OWASP modules' common ground: the operations the app serves, read from its own route table and
OpenAPI description, one of every caller (anonymous, member, marketer, admin, register), and one of every
object a path can name."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
from litestar.routes import HTTPRoute

from api.app import create_app
from domain.clock import SettableClock
from infra.settings import Settings
from tests.integration.factories import (
    PASSWORD,
    TerminalCredentials,
    bearer,
    create_store,
    create_terminal,
    signed_headers,
    store_draft,
    unique_email,
)
from tests.integration.offers_support import offer_draft
from tests.integration.push_support import create_campaign
from tests.integration.register import GINZA, Shopper, refund, sale, shopper

PATH_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Operation:
    """One (method, path) the app answers, as its OpenAPI description and its route table say."""

    method: str
    path: str  # OpenAPI's template: /v1/console/stores/{store_id}
    security: str | None  # "member", "staff", "pos_signature", or None (open)
    admin_only: bool  # its handler depends on the admin role
    body_schema: str | None  # the request body's component name
    query: Mapping[str, Any] = field(default_factory=dict)  # name -> schema

    @property
    def path_parameters(self) -> list[str]:
        return PATH_PARAMETER.findall(self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def openapi_path(route_path: str) -> str:
    """/v1/console/stores/{store_id:uuid} as OpenAPI writes it: /v1/console/stores/{store_id}."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", route_path)


def _admin_only(settings: Settings, clock: SettableClock) -> set[tuple[str, str]]:
    app = create_app(settings, clock)
    return {
        (method, openapi_path(route.path))
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if "admin" in handler.resolve_dependencies()
        for method in handler.http_methods
    }


def request_body_types(settings: Settings, clock: SettableClock) -> dict[str, Any]:
    """ "METHOD /path" -> the type its handler decodes the body into (what the server enforces, which the
    OpenAPI description renders with some constraints left out)."""
    app = create_app(settings, clock)
    return {
        f"{method} {openapi_path(route.path)}": data.annotation
        for route in app.routes
        if isinstance(route, HTTPRoute) and route.path.startswith("/v1/")
        for handler in route.route_handlers
        if (data := handler.parsed_fn_signature.parameters.get("data")) is not None
        for method in handler.http_methods
    }


def described_operations(settings: Settings, clock: SettableClock) -> tuple[list[Operation], dict[str, Any]]:
    """Every /v1 operation of the app, and the OpenAPI components (test_owasp_improper_inventory.py proves
    that the description lists exactly what is served)."""
    document = create_app(settings, clock).openapi_schema.to_schema()
    admin_only = _admin_only(settings, clock)
    found: list[Operation] = []
    for path, item in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in item.items():
            security = operation.get("security") or []
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = body.get("schema", {}).get("$ref")
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    security=next(iter(security[0]), None) if security else None,
                    admin_only=(method.upper(), path) in admin_only,
                    body_schema=ref.rsplit("/", 1)[-1] if ref else None,
                    query={
                        p["name"]: p.get("schema", {})
                        for p in operation.get("parameters", [])
                        if p["in"] == "query"
                    },
                )
            )
    return found, document["components"]["schemas"]


@dataclass(frozen=True)
class Callers:
    member: Shopper
    other_member: Shopper
    marketer: dict[str, Any]
    admin: dict[str, Any]
    terminal: TerminalCredentials  # of `World.store_id`
    other_terminal: TerminalCredentials  # of `World.other_store_id`


async def send(
    client: httpx.AsyncClient,
    caller: str,
    callers: Callers,
    method: str,
    path: str,
    body: Any = None,
    *,
    params: Mapping[str, str] | None = None,
    raw: bytes | None = None,
) -> httpx.Response:
    """`method path` with `body` (JSON) as `caller` sends it: "anonymous", "member", "other_member",
    "marketer", "admin", "terminal" (signed as a register does) or "other_terminal"; `raw` bytes instead of
    a JSON body."""
    content = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
    query = str(httpx.QueryParams(params or {}))
    headers: dict[str, str] = {"Content-Type": "application/json", "Idempotency-Key": secrets.token_hex(12)}
    if caller in {"terminal", "other_terminal"}:
        terminal = callers.terminal if caller == "terminal" else callers.other_terminal
        headers |= signed_headers(terminal, method, path + (f"?{query}" if query else ""), content)
    elif caller in {"member", "other_member"}:
        headers |= bearer((callers.member if caller == "member" else callers.other_member).session)
    elif caller in {"marketer", "admin"}:
        headers |= bearer(callers.marketer if caller == "marketer" else callers.admin)
    else:
        assert caller == "anonymous", caller
    return await client.request(method, path, content=content, params=params, headers=headers)


@dataclass(frozen=True)
class World:
    """One of everything a path can name, in two stores; `offer_id` is active, `draft_offer_id` not."""

    callers: Callers
    store_id: str
    other_store_id: str
    member_id: str
    other_member_id: str
    campaign_id: str
    offer_id: str
    draft_offer_id: str
    today: date

    def ids(self) -> dict[str, str]:
        return {
            "store_id": self.store_id,
            "terminal_id": self.callers.terminal.terminal_id,
            "member_id": self.member_id,
            "campaign_id": self.campaign_id,
            "offer_id": self.offer_id,
            "slot": str(self.callers.member.session["device"]["slot"]),
        }

    def path(self, operation: Operation, **ids: str) -> str:
        """The operation's path naming this world's objects, or the `ids` given."""
        named = self.ids() | ids
        return PATH_PARAMETER.sub(lambda m: named[m.group(1)], operation.path)


async def make_world(
    client: httpx.AsyncClient, admin: dict[str, Any], marketer: dict[str, Any], today: date
) -> World:
    store = await create_store(client, admin)
    other_store = await create_store(client, admin)
    member, other_member = await shopper(client), await shopper(client)
    campaign = await create_campaign(client, marketer)
    draft = await client.post("/v1/console/offers", json=offer_draft(today), headers=bearer(marketer))
    assert draft.status_code == 201, draft.text
    offer = await client.post("/v1/console/offers", json=offer_draft(today), headers=bearer(marketer))
    assert offer.status_code == 201, offer.text
    active = await client.post(
        f"/v1/console/offers/{offer.json()['id']}/state", json={"state": "active"}, headers=bearer(marketer)
    )
    assert active.status_code == 200, active.text
    callers = Callers(
        member=member,
        other_member=other_member,
        marketer=marketer,
        admin=admin,
        terminal=await create_terminal(client, admin, store["id"]),
        other_terminal=await create_terminal(client, admin, other_store["id"]),
    )
    return World(
        callers=callers,
        store_id=store["id"],
        other_store_id=other_store["id"],
        member_id=member.session["member"]["id"],
        other_member_id=other_member.session["member"]["id"],
        campaign_id=campaign["id"],
        offer_id=offer.json()["id"],
        draft_offer_id=draft.json()["id"],
        today=today,
    )


# Who refused a caller, by code: the answers of authentication and authorization (not a wrong password in
# the body, nor a missing object).
REFUSED_CALLER = frozenset(
    {
        "access_token_invalid",
        "access_token_expired",
        "staff_role_required",
        "pos_signature_missing",
        "pos_signature_invalid",
        "pos_terminal_unknown",
    }
)


def valid_body(operation: Operation, world: World) -> Any:
    """A body the operation takes (None: it takes none), so that only who calls, and which object the path
    names, decide the answer."""
    now = datetime.now(UTC)
    bodies: dict[str, Any] = {
        "PATCH /v1/app/me": {"display_name": "Hanako"},
        "DELETE /v1/app/me": {"password": PASSWORD + " not"},  # a sweep must not erase its member
        "POST /v1/app/sessions": {
            "email": world.callers.member.session["member"]["email"],
            "password": "x" * 12,
        },
        "POST /v1/app/sessions/logout": {"refresh_token": secrets.token_urlsafe(32)},
        "POST /v1/app/sessions/refresh": {"refresh_token": secrets.token_urlsafe(32)},
        "POST /v1/app/members": {"email": unique_email(), "password": PASSWORD, "display_name": "Taro"},
        "POST /v1/console/sessions": {"email": unique_email("staff"), "password": "x" * 12},
        "POST /v1/console/sessions/logout": {"refresh_token": secrets.token_urlsafe(32)},
        "POST /v1/console/sessions/refresh": {"refresh_token": secrets.token_urlsafe(32)},
        "POST /v1/console/stores": store_draft(),
        "PATCH /v1/console/stores/{store_id}": {"name": "Renamed store"},
        "POST /v1/console/stores/{store_id}/terminals": {"name": "Register 9"},
        "PATCH /v1/console/terminals/{terminal_id}": {"name": "Register 2"},
        "POST /v1/pos/heartbeat": {"software_version": "pos 1.0"},
        "POST /v1/pos/purchases": sale(1_000, at=now),
        "POST /v1/pos/refunds": refund("R-none", now),
        "POST /v1/pos/members/resolve": {"code": "0" * 20},
        "POST /v1/app/events": {
            "events": [
                {
                    "client_event_id": secrets.token_hex(8),
                    "kind": "app_opened",
                    "occurred_at": now.isoformat(),
                }
            ]
        },
        "POST /v1/app/check-ins": {
            "store_id": world.store_id,
            "latitude": GINZA[0],
            "longitude": GINZA[1],
            "accuracy_m": 20,
            "fix_at": now.isoformat(),
            "trigger": "user_tap",
        },
        "PUT /v1/console/members/{member_id}/check-in-flag": {"reason": "shared phone"},
        "PUT /v1/app/devices/current/push-address": {
            "kind": "fid",
            "address": f"fid-{secrets.token_hex(8)}",
            "platform": "ios",
            "app_version": "3.2.0",
            "locale": "ja-JP",
            "permission": "granted",
        },
        "POST /v1/console/campaigns": {
            "name": "Winter linen",
            "variants": [{"key": "A", "title": "Hello", "body": "New linen is in."}],
            "schedule": {"kind": "now"},
        },
        "PATCH /v1/console/campaigns/{campaign_id}": {"name": "Renamed campaign"},
        "POST /v1/console/segments/estimate": {"segment": {"all": []}},
        "POST /v1/console/offers": offer_draft(world.today),
        "PATCH /v1/console/offers/{offer_id}": {"name": "Renamed offer"},
        "POST /v1/console/offers/{offer_id}/state": {"state": "paused"},
    }
    if operation.body_schema is None:
        assert str(operation) not in bodies, operation
        return None
    return bodies[str(operation)]


def valid_query(operation: Operation, world: World) -> dict[str, str]:
    """The query parameters an operation requires."""
    if operation.path in {"/v1/app/stores/nearby", "/v1/app/stores/regions"}:
        return {"lat": str(GINZA[0]), "lon": str(GINZA[1])}
    if operation.path == "/v1/console/campaigns/{campaign_id}/preview":
        return {"member_id": world.member_id}
    return {}
