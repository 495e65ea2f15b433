"""OWASP API7:2023 Server-side request forgery: no URL a client sends is ever fetched by the server.

A local TCP listener counts connections; its address goes into every field that takes a URL or an
address (an offer's image, a campaign's deep link, a phone's push address, a store's postal address) and
into free text where a URL may hide (event properties and subjects, a register's software version, a
profile name, a flag reason), and every flow that reads them runs: the app's offer list and a clip, the
console's reads and previews, a campaign drawn and sent through the local FCM server. The listener must
see no connection. The only outbound calls the code can make are FCM's, at an address from settings
(checked here from the imports), and the URL fields are validated: schemes, credentials, spaces, length.
"""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from domain.clock import SettableClock
from infra.db import Database
from infra.settings import Settings
from tests.integration.db_fingerprint import assert_nothing_written, fingerprint
from tests.integration.factories import bearer, sign_up
from tests.integration.offers_support import offer_draft
from tests.integration.owasp_support import World, make_world, request_body_types, send
from tests.integration.problems import assert_problem
from tests.integration.push_support import LocalFcmServer, dispatcher, draw, send_all_due

PRODUCTION = (
    "accounts",
    "api",
    "commands",
    "domain",
    "geofence",
    "infra",
    "offers",
    "points",
    "push",
    "stores",
    "timeline",
)
HTTP_CLIENTS = {"httpx", "requests", "aiohttp", "urllib.request", "http.client", "urllib3", "pycurl"}
# The modules that may open connections, and why.
MAY_CONNECT = {
    "push/fcm.py": "sends to FCM (Google's endpoint, or TSUNAGARI_FCM_URL from settings)",
    "commands/demo_campaign.py": "the demo's simulated phones call the app the demo itself serves",
}
URL_LIKE = re.compile(r"url|uri|link|href|image|address|endpoint|callback|webhook|redirect")
# Every body field named like a URL or an address, and what it is.
URL_FIELDS = {
    "POST /v1/console/offers.image_url": "shown by the app; https only",
    "PATCH /v1/console/offers/{offer_id}.image_url": "shown by the app; https only",
    "POST /v1/console/campaigns.deep_link": "opened by the phone",
    "PATCH /v1/console/campaigns/{campaign_id}.deep_link": "opened by the phone",
    "PUT /v1/app/devices/current/push-address.address": "an FCM token or installation id, no URL",
    "POST /v1/console/stores.address": "a postal address",
    "PATCH /v1/console/stores/{store_id}.address": "a postal address",
}


class Listener:
    """A TCP port that counts who connects to it."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/pixel.png"


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    listening = Listener()
    server = await asyncio.start_server(listening._accepted, "127.0.0.1", 0)
    listening.port = server.sockets[0].getsockname()[1]
    async with server:
        yield listening


@pytest.fixture
async def world(
    client: httpx.AsyncClient, admin: dict[str, Any], marketer: dict[str, Any], clock: SettableClock
) -> World:
    return await make_world(client, admin, marketer, clock.now().date())


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_only_the_fcm_sender_and_the_demos_phones_can_open_connections() -> None:
    root = Path(__file__).resolve().parents[2]
    connecting = {
        str(path.relative_to(root))
        for package in PRODUCTION
        for path in (root / package).rglob("*.py")
        if _imports(path) & HTTP_CLIENTS
    }
    assert connecting == set(MAY_CONNECT)


def test_every_field_named_like_a_url_or_an_address_is_known(
    settings: Settings, clock: SettableClock
) -> None:
    found = set()
    for operation, body_type in request_body_types(settings, clock).items():
        (schema,), components = msgspec.json.schema_components([body_type])
        name = schema["$ref"].rsplit("/", 1)[-1]
        for field in components[name].get("properties", {}):
            if URL_LIKE.search(field):
                found.add(f"{operation}.{field}")
    assert found == set(URL_FIELDS)


async def test_no_url_a_client_sends_is_fetched_in_any_flow(
    client: httpx.AsyncClient,
    world: World,
    listener: Listener,
    db: Database,
    clock: SettableClock,
    settings: Settings,
    fcm: LocalFcmServer,
) -> None:
    url, bare = listener.url, f"127.0.0.1:{listener.port}"
    callers = world.callers
    # The control: a connection is seen.
    _, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    writer.close()
    for _ in range(50):
        if listener.connections:
            break
        await asyncio.sleep(0.01)
    assert listener.connections == 1

    async def ok(caller: str, method: str, path: str, body: Any = None, **params: str) -> Any:
        answer = await send(client, caller, callers, method, path, body, params=params)
        assert answer.status_code < 300, (method, path, answer.text)
        return answer.json() if answer.content else None

    offer = await ok("marketer", "POST", "/v1/console/offers", offer_draft(world.today, image_url=url))
    await ok("marketer", "PATCH", f"/v1/console/offers/{world.draft_offer_id}", {"image_url": url})
    await ok("marketer", "POST", f"/v1/console/offers/{offer['id']}/state", {"state": "active"})
    campaign = await ok(
        "marketer",
        "POST",
        "/v1/console/campaigns",
        {
            "name": url,
            "variants": [{"key": "A", "title": url, "body": f"See {url}"}],
            "schedule": {"kind": "now"},
            "deep_link": url,
            "transactional": True,
        },
    )
    await ok("admin", "PATCH", f"/v1/console/stores/{world.store_id}", {"address": url, "name": url})
    await ok("admin", "PUT", f"/v1/console/members/{world.other_member_id}/check-in-flag", {"reason": url})
    await ok("member", "PATCH", "/v1/app/me", {"display_name": url})
    await ok(
        "member",
        "PUT",
        "/v1/app/devices/current/push-address",
        {
            "kind": "token",
            "address": bare,
            "platform": "web",
            "app_version": "3.2.0",
            "locale": "ja-JP",
            "permission": "granted",
        },
    )
    event = {
        "client_event_id": "ssrf-1",
        "kind": "content_viewed",
        "occurred_at": clock.now().isoformat(),
        "subject": {"type": "content", "id": url[:64]},
        "properties": {"url": url, "links": [url, bare]},
    }
    await ok("member", "POST", "/v1/app/events", {"events": [event]})
    await ok("terminal", "POST", "/v1/pos/heartbeat", {"software_version": url[:80]})

    # Every flow that reads them.
    listed = await ok("member", "GET", "/v1/app/offers")
    assert url in str(listed)
    await ok("member", "POST", f"/v1/app/offers/{offer['id']}/activate")
    await ok("member", "GET", "/v1/app/timeline")
    for path in (f"/v1/console/offers/{offer['id']}", f"/v1/console/campaigns/{campaign['id']}"):
        await ok("marketer", "GET", path)
    await ok("marketer", "GET", f"/v1/console/campaigns/{campaign['id']}/preview", member_id=world.member_id)
    await ok("marketer", "GET", f"/v1/console/members/{world.member_id}/timeline")
    await ok("admin", "GET", f"/v1/console/stores/{world.store_id}/terminals")
    await ok("marketer", "POST", f"/v1/console/campaigns/{campaign['id']}/schedule")
    await draw(db, clock, settings)
    async with dispatcher(settings, fcm, clock, db) as sender:
        await send_all_due(sender)
    sent = [m for m in fcm.messages() if m["target"] == bare]
    assert len(sent) == 1, fcm.messages()
    assert sent[0]["data"]["deep_link"] == url  # handed to the phone as it is

    await asyncio.sleep(0.5)  # anything fetched in the background has had its time
    assert listener.connections == 1  # the control's, and no other


BAD_IMAGE_URLS = [
    "http://cdn.example.com/a.png",
    "file:///etc/passwd",
    "ftp://cdn.example.com/a.png",
    "gopher://127.0.0.1:6379/_INFO",
    "javascript:alert(1)",
    "data:image/png;base64,AAAA",
    "https://user:secret@cdn.example.com/a.png",
    "https://cdn.example.com/a b.png",
    "//cdn.example.com/a.png",
    "https://cdn.example.com/" + "a" * 500,
]
BAD_DEEP_LINKS = [
    "javascript:alert(1)",
    "javascript://%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "tsunagari://offers/a b",
    "no scheme at all",
    "https://example.com/" + "a" * 512,
]
BAD_PUSH_ADDRESSES = ["https://127.0.0.1/push", "http://evil.example", "fid with spaces", "x" * 1025]


async def test_url_fields_refuse_other_schemes_credentials_spaces_and_excess_and_write_nothing(
    client: httpx.AsyncClient, marketer: dict[str, Any], clock: SettableClock, db: Database
) -> None:
    """An image is https without credentials; a deep link has a scheme that runs nothing; a push address
    is no URL at all; each within its length."""
    member = await sign_up(client)
    before = await fingerprint(db)
    answers = {}
    for image_url in BAD_IMAGE_URLS:
        body = offer_draft(clock.now().date(), image_url=image_url)
        answers[image_url] = await client.post("/v1/console/offers", json=body, headers=bearer(marketer))
    for deep_link in BAD_DEEP_LINKS:
        body = {
            "name": "Deep link",
            "variants": [{"key": "A", "title": "Hello", "body": "New linen is in."}],
            "schedule": {"kind": "now"},
            "deep_link": deep_link,
        }
        answers[deep_link] = await client.post("/v1/console/campaigns", json=body, headers=bearer(marketer))
    for address in BAD_PUSH_ADDRESSES:
        body = {
            "kind": "token",
            "address": address,
            "platform": "web",
            "app_version": "3.2.0",
            "locale": "ja-JP",
            "permission": "granted",
        }
        answers[address] = await client.put(
            "/v1/app/devices/current/push-address", json=body, headers=bearer(member)
        )
    for value, answer in answers.items():
        assert answer.status_code == 400, (value[:60], answer.text)
        assert_problem(answer, 400, "validation_failed")
    await assert_nothing_written(db, before)
