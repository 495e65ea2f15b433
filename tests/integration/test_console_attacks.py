"""A hostile review of the web console (/console), over real HTTP as a browser or a script would send it.

Every POST route is tried without its CSRF token, with another session's token, from a foreign origin and
signed out; a marketer tries every admin route; sessions are reused after logout, after the account is
disabled or demoted, and after they expire; markup is planted wherever staff or members can type text and
looked for, escaped, in the pages and the SVG plots; forms are fed garbage; paths name missing or foreign
ids; and the same form is sent twice at once. Each refused request must leave the database exactly as it
was (a digest of every table is compared), and nothing may answer 500.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import re
import secrets
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update

from accounts.rules import StaffRole
from accounts.staff import create_staff
from accounts.tables import Staff
from api.console import console_router
from domain.clock import SettableClock
from infra.charts import Interval, Series, bar_chart, interval_chart, line_chart
from infra.db import Database
from tests.integration.db_fingerprint import assert_nothing_written, fingerprint
from tests.integration.factories import (
    PASSWORD,
    bearer,
    create_store,
    create_terminal,
    pos_post,
    sign_up,
    unique_email,
)
from tests.integration.offers_support import offer_draft
from tests.integration.push_support import create_campaign

SESSION_COOKIE = "tsunagari_console"
LOGIN_COOKIE = "tsunagari_console_login"
FOREIGN = "https://evil.example"
# Markup that would run if printed as it is, in text or in a quoted attribute (55 characters: it fits every
# name field, a member's display name included).
PAYLOAD = "<script>alert(1)</script>\"'><img src=x onerror=alert(1)>"
FormData = Mapping[str, str | list[str]]


class _NoJar(http.cookiejar.CookieJar):
    """Keeps no cookie: every request here says exactly which cookies it carries."""

    def extract_cookies(self, response: Any, request: urllib.request.Request) -> None:
        return None


@pytest.fixture
async def web(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60, cookies=_NoJar()) as http_client:
        yield http_client


_OWN: Any = object()


@dataclass(frozen=True)
class Console:
    """One browser signed in to the console: its session cookie and the CSRF token its pages carry."""

    web: httpx.AsyncClient
    email: str
    token: str
    csrf: str

    def _headers(self, cookie: str | None, more: Mapping[str, str] | None) -> dict[str, str]:
        headers = dict(more or {})
        if cookie is not None:
            headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
        return headers

    async def get(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        cookie: str | None = _OWN,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        cookie = self.token if cookie is _OWN else cookie
        return await self.web.get(path, params=params, headers=self._headers(cookie, headers))

    async def post(
        self,
        path: str,
        data: FormData | None = None,
        *,
        csrf: str | None = _OWN,
        cookie: str | None = _OWN,
        origin: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        form: dict[str, str | list[str]] = dict(data or {})
        token = self.csrf if csrf is _OWN else csrf
        if token is not None:
            form["csrf_token"] = token
        more = dict(headers or {})
        if origin is not None:
            more["Origin"] = origin
        return await self.web.post(
            path, data=form, headers=self._headers(self.token if cookie is _OWN else cookie, more)
        )

    async def post_raw(
        self, path: str, body: bytes, content_type: str, *, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        more = {"Content-Type": content_type, "X-CSRF-Token": self.csrf, **(headers or {})}
        return await self.web.post(path, content=body, headers=self._headers(self.token, more))


def _csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)


async def new_staff(db: Database, clock: SettableClock, role: StaffRole, display_name: str = "") -> str:
    email = unique_email(role.value)
    async with db.unit_of_work() as uow:
        await create_staff(uow, clock, email, PASSWORD, display_name or f"Console {role.value}", role)
    return email


async def log_in(web: httpx.AsyncClient, email: str) -> Console:
    """Through the login form, as a browser does it (the double-submit cookie included)."""
    form = await web.get("/console/login")
    assert form.status_code == 200, form.text
    login_token = form.cookies[LOGIN_COOKIE]
    assert _csrf_of(form.text) == login_token
    response = await web.post(
        "/console/login",
        data={"csrf_token": login_token, "email": email, "password": PASSWORD},
        headers={"Cookie": f"{LOGIN_COOKIE}={login_token}"},
    )
    assert response.status_code == 303, response.text
    token = response.cookies[SESSION_COOKIE]
    front = await web.get("/console", headers={"Cookie": f"{SESSION_COOKIE}={token}"})
    assert front.status_code == 200, front.text
    return Console(web, email, token, _csrf_of(front.text))


async def console_of(web: httpx.AsyncClient, db: Database, clock: SettableClock, role: StaffRole) -> Console:
    return await log_in(web, await new_staff(db, clock, role))


@pytest.fixture
async def admin_console(web: httpx.AsyncClient, db: Database, clock: SettableClock) -> Console:
    return await console_of(web, db, clock, StaffRole.ADMIN)


@pytest.fixture
async def marketer_console(web: httpx.AsyncClient, db: Database, clock: SettableClock) -> Console:
    return await console_of(web, db, clock, StaffRole.MARKETER)


@dataclass(frozen=True)
class World:
    """One of everything a console path can name."""

    store_id: str
    terminal_id: str
    member_id: str
    member_email: str
    campaign_id: str
    offer_id: str  # a draft
    today: date


@pytest.fixture
async def world(client: httpx.AsyncClient, admin: dict[str, Any], clock: SettableClock) -> World:
    store = await create_store(client, admin)
    terminal = await create_terminal(client, admin, store["id"])
    member = await sign_up(client)
    campaign = await create_campaign(client, admin)
    today = clock.now().date()
    offer = await client.post("/v1/console/offers", json=offer_draft(today), headers=bearer(admin))
    assert offer.status_code == 201, offer.text
    return World(
        store_id=store["id"],
        terminal_id=terminal.terminal_id,
        member_id=member["member"]["id"],
        member_email=member["member"]["email"],
        campaign_id=campaign["id"],
        offer_id=offer.json()["id"],
        today=today,
    )


def campaign_form(**overrides: str | list[str]) -> dict[str, str | list[str]]:
    form: dict[str, str | list[str]] = {
        "name": "Console attack",
        "variants[0].key": "A",
        "variants[0].title": "Hello {display_name}",
        "variants[0].body": "New linen is in.",
        "schedule.kind": "now",
        "control_percent": "0",
    }
    form.update(overrides)
    return form


def offer_form(today: date, **overrides: str | list[str]) -> dict[str, str | list[str]]:
    form: dict[str, str | list[str]] = {
        "name": "Console attack offer",
        "title": "100 bonus points on linen",
        "body": "Clip this offer and buy any linen item.",
        "terms.kind": "bonus_points",
        "terms.points": "100",
        "terms.category": "linen",
        "valid_from": (today - timedelta(days=1)).isoformat(),
        "valid_until": (today + timedelta(days=30)).isoformat(),
    }
    form.update(overrides)
    return form


def store_form(**overrides: str | list[str]) -> dict[str, str | list[str]]:
    form: dict[str, str | list[str]] = {
        "code": f"ATK-{secrets.token_hex(3).upper()}",
        "name": "Attack store",
        "address": "東京都中央区銀座3-3-5",
        "latitude": "35.6717",
        "longitude": "139.7650",
        "time_zone": "Asia/Tokyo",
        "geofence_enabled": "on",
    }
    form.update(overrides)
    return form


@dataclass(frozen=True)
class PostRoute:
    template: str  # as the router declares it, e.g. /console/offers/{offer_id:uuid}/state
    admin: bool
    form: Callable[[World], FormData]

    def path(self, world: World) -> str:
        ids = {
            "campaign_id": world.campaign_id,
            "offer_id": world.offer_id,
            "store_id": world.store_id,
            "terminal_id": world.terminal_id,
            "member_id": world.member_id,
        }
        return re.sub(r"\{(\w+):uuid\}", lambda m: ids[m.group(1)], self.template)


POST_ROUTES = [
    PostRoute("/console/logout", False, lambda w: {}),
    PostRoute("/console/segments", False, lambda w: {}),
    PostRoute("/console/campaigns", False, lambda w: campaign_form()),
    PostRoute("/console/campaigns/{campaign_id:uuid}/schedule", False, lambda w: {}),
    PostRoute("/console/campaigns/{campaign_id:uuid}/cancel", False, lambda w: {}),
    PostRoute("/console/offers", False, lambda w: offer_form(w.today)),
    PostRoute("/console/offers/{offer_id:uuid}", False, lambda w: offer_form(w.today, name="Renamed")),
    PostRoute("/console/offers/{offer_id:uuid}/state", False, lambda w: {"state": "active"}),
    PostRoute("/console/stores", True, lambda w: store_form()),
    PostRoute("/console/stores/{store_id:uuid}", True, lambda w: {"name": "Renamed store"}),
    PostRoute("/console/stores/{store_id:uuid}/terminals", True, lambda w: {"name": "Register 9"}),
    PostRoute("/console/terminals/{terminal_id:uuid}", True, lambda w: {}),
    PostRoute("/console/fraud/{member_id:uuid}/flag", True, lambda w: {"reason": "shared phone"}),
    PostRoute("/console/fraud/{member_id:uuid}/unflag", True, lambda w: {}),
]
# Posts that write nothing here: an estimate, and unflagging a member nobody flagged.
READ_ONLY_POSTS = {"/console/segments", "/console/fraud/{member_id:uuid}/unflag"}
ADMIN_GETS = ["/console/stores", "/console/stores/new", "/console/stores/{store_id:uuid}", "/console/fraud"]
USER_GETS = [
    "/console",
    "/console/members",
    "/console/members/{member_id:uuid}",
    "/console/segments",
    "/console/campaigns",
    "/console/campaigns/new",
    "/console/campaigns/{campaign_id:uuid}",
    "/console/campaigns/{campaign_id:uuid}/preview",
    "/console/offers",
    "/console/offers/new",
    "/console/offers/{offer_id:uuid}",
]


def _get_path(template: str, world: World) -> str:
    return PostRoute(template, False, lambda w: {}).path(world)


def _declared_routes() -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for route in console_router().routes:
        methods = set(getattr(route, "methods", set())) - {"OPTIONS", "HEAD"}
        routes.setdefault(route.path, set()).update(methods)
    return routes


def test_the_attacks_below_cover_every_console_route() -> None:
    declared = _declared_routes()
    posts = {path for path, methods in declared.items() if "POST" in methods} - {"/console/login"}
    gets = {path for path, methods in declared.items() if "GET" in methods}
    assert posts == {route.template for route in POST_ROUTES}
    assert gets - {"/console/login", "/console/static/{file_path:path}"} == set(ADMIN_GETS) | set(USER_GETS)
    admin_paths = {
        p for p in declared if p.startswith(("/console/stores", "/console/terminals", "/console/fraud"))
    }
    assert admin_paths == {r.template for r in POST_ROUTES if r.admin} | set(ADMIN_GETS)


# --- CSRF, origin, session ---------------------------------------------------------------------------


@pytest.mark.parametrize("route", POST_ROUTES, ids=lambda r: r.template)
async def test_every_post_refuses_a_forged_request_and_writes_nothing(
    route: PostRoute, web: httpx.AsyncClient, world: World, db: Database, clock: SettableClock
) -> None:
    role = StaffRole.ADMIN if route.admin else StaffRole.MARKETER
    me = await console_of(web, db, clock, role)
    other = await console_of(web, db, clock, role)
    path, form = route.path(world), route.form(world)
    before = await fingerprint(db)
    forged = {
        "no token": await me.post(path, form, csrf=None),
        "an empty token": await me.post(path, form, csrf=""),
        "another session's token": await me.post(path, form, csrf=other.csrf),
        "my token with the other session's cookie": await me.post(path, form, cookie=other.token),
        "a token one character off": await me.post(
            path, form, csrf=me.csrf[:-1] + ("0" if me.csrf[-1] != "0" else "1")
        ),
        "the token in a header from another site": await me.post(
            path, form, csrf=None, headers={"X-CSRF-Token": me.csrf}, origin=FOREIGN
        ),
        "the right token from another site": await me.post(path, form, origin=FOREIGN),
        "the right token from an opaque origin": await me.post(path, form, origin="null"),
        "the right token, other scheme": await me.post(
            path, form, origin=str(web.base_url).replace("http:", "https:").rstrip("/")
        ),
    }
    for attack, response in forged.items():
        assert response.status_code == 403, (attack, response.status_code, response.text[:300])
        assert "csrf_token_invalid" in response.text, attack
        assert "no-store" in response.headers.get("cache-control", ""), attack
    signed_out = await me.post(path, form, cookie=None)
    assert signed_out.status_code == 303, signed_out.text
    assert signed_out.headers["location"] == "/console/login"
    garbage_cookie = await me.post(path, form, cookie="x" * 201)
    assert garbage_cookie.status_code == 303
    await assert_nothing_written(db, before)
    # The same request with the page's own token goes through: the refusals above were the token's doing.
    accepted = await me.post(path, form, origin=str(web.base_url).rstrip("/"))
    assert accepted.status_code in (200, 201, 303), accepted.text[:500]
    if route.template == "/console/logout":
        assert (await me.get("/console")).headers.get("location") == "/console/login"
    else:
        assert accepted.headers.get("location") != "/console/login"
    if route.template not in READ_ONLY_POSTS:  # and the fingerprint sees what the route writes
        assert await fingerprint(db) != before


async def test_csrf_token_in_the_header_alone_is_accepted_from_our_own_pages(
    web: httpx.AsyncClient, world: World, db: Database, marketer_console: Console
) -> None:
    """What htmx sends: the token as X-CSRF-Token, no form field (the control for the header refusals)."""
    response = await marketer_console.post(
        "/console/segments",
        {},
        csrf=None,
        headers={"X-CSRF-Token": marketer_console.csrf, "HX-Request": "true"},
    )
    assert response.status_code == 200, response.text
    assert 'id="segment-size"' in response.text


@pytest.mark.parametrize("route", [r for r in POST_ROUTES if r.admin], ids=lambda r: r.template)
async def test_a_marketer_cannot_post_to_an_admin_route(
    route: PostRoute, world: World, db: Database, marketer_console: Console
) -> None:
    before = await fingerprint(db)
    response = await marketer_console.post(route.path(world), route.form(world))
    assert response.status_code == 403, response.text[:300]
    assert "staff_role_required" in response.text
    await assert_nothing_written(db, before)


@pytest.mark.parametrize("template", ADMIN_GETS)
async def test_a_marketer_cannot_open_an_admin_page_and_sees_no_link_to_it(
    template: str, world: World, admin_console: Console, marketer_console: Console
) -> None:
    path = _get_path(template, world)
    refused = await marketer_console.get(path)
    assert refused.status_code == 403, refused.text[:300]
    assert "staff_role_required" in refused.text
    assert "Register 1" not in refused.text  # no terminal shown
    assert "TST-" not in refused.text  # no store shown
    shown = await admin_console.get(path)
    assert shown.status_code == 200, shown.text[:300]
    front = await marketer_console.get("/console")
    assert 'href="/console/stores"' not in front.text
    assert 'href="/console/fraud"' not in front.text
    admin_front = await admin_console.get("/console")
    assert 'href="/console/stores"' in admin_front.text
    assert 'href="/console/fraud"' in admin_front.text


@pytest.mark.parametrize("template", USER_GETS + ADMIN_GETS)
async def test_a_signed_out_browser_is_sent_to_log_in(
    template: str, web: httpx.AsyncClient, world: World, admin_console: Console
) -> None:
    path = _get_path(template, world)
    for cookie in (None, "", "nonsense", "x" * 5000, admin_console.csrf):
        response = await admin_console.get(path, cookie=cookie)
        assert response.status_code == 303, (cookie, response.status_code, response.text[:300])
        assert response.headers["location"] == "/console/login"
    htmx = await admin_console.get(path, cookie=None, headers={"HX-Request": "true"})
    assert htmx.status_code == 401
    assert htmx.headers["hx-redirect"] == "/console/login"


async def test_logged_out_cookie_is_dead_for_pages_and_forms(
    world: World, db: Database, marketer_console: Console
) -> None:
    refused = await marketer_console.post("/console/logout", {}, csrf=None)
    assert refused.status_code == 403  # logging out is a form like any other
    assert (await marketer_console.get("/console")).status_code == 200
    out = await marketer_console.post("/console/logout", {})
    assert out.status_code == 303
    assert out.headers["location"] == "/console/login"
    assert f"{SESSION_COOKIE}=" in out.headers["set-cookie"]
    before = await fingerprint(db)
    assert (await marketer_console.get("/console")).status_code == 303
    replay = await marketer_console.post("/console/campaigns", campaign_form())
    assert replay.status_code == 303
    assert replay.headers["location"] == "/console/login"
    cancel = await marketer_console.post(f"/console/campaigns/{world.campaign_id}/cancel", {})
    assert cancel.headers.get("location") == "/console/login"
    await assert_nothing_written(db, before)


async def test_disabled_or_demoted_staff_lose_their_console_session_at_once(
    world: World, db: Database, clock: SettableClock, web: httpx.AsyncClient
) -> None:
    admin = await console_of(web, db, clock, StaffRole.ADMIN)
    assert (await admin.get("/console/stores")).status_code == 200
    async with db.unit_of_work() as uow:
        await uow.session.execute(
            update(Staff).where(Staff.email == admin.email).values(role=StaffRole.MARKETER)
        )
    assert (await admin.get("/console/stores")).status_code == 403
    assert (await admin.get("/console")).status_code == 200
    async with db.unit_of_work() as uow:
        await uow.session.execute(
            update(Staff).where(Staff.email == admin.email).values(disabled_at=clock.now())
        )
    before = await fingerprint(db)
    assert (await admin.get("/console")).headers.get("location") == "/console/login"
    posted = await admin.post("/console/campaigns", campaign_form())
    assert posted.status_code == 303
    assert posted.headers["location"] == "/console/login"
    await assert_nothing_written(db, before)
    # ...and a disabled account cannot log in again through the form.
    form = await web.get("/console/login")
    token = form.cookies[LOGIN_COOKIE]
    again = await web.post(
        "/console/login",
        data={"csrf_token": token, "email": admin.email, "password": PASSWORD},
        headers={"Cookie": f"{LOGIN_COOKIE}={token}"},
    )
    assert again.status_code in (401, 403), again.text[:300]
    assert SESSION_COOKIE not in again.cookies


async def test_a_session_ends_after_a_working_day(
    db: Database, clock: SettableClock, marketer_console: Console
) -> None:
    clock.set(clock.now() + timedelta(hours=12, seconds=1))
    assert (await marketer_console.get("/console")).headers.get("location") == "/console/login"


async def test_api_tokens_and_console_cookies_do_not_stand_in_for_each_other(
    client: httpx.AsyncClient, admin: dict[str, Any], admin_console: Console
) -> None:
    for token in (admin["tokens"]["access_token"], admin["tokens"]["refresh_token"]):
        response = await admin_console.get("/console/stores", cookie=token)
        assert response.status_code == 303
        assert response.headers["location"] == "/console/login"
    api = await client.get("/v1/console/me", headers=bearer(admin_console.token))
    assert api.status_code == 401


async def test_session_cookie_is_httponly_strict_and_scoped_to_the_console(
    web: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    email = await new_staff(db, clock, StaffRole.MARKETER)
    form = await web.get("/console/login")
    login_cookie = form.headers["set-cookie"].lower()
    for attribute in ("httponly", "samesite=strict", "path=/console"):
        assert attribute in login_cookie
    token = form.cookies[LOGIN_COOKIE]
    response = await web.post(
        "/console/login?next=https://evil.example/&return_to=//evil.example",
        data={"csrf_token": token, "email": email, "password": PASSWORD, "next": "https://evil.example/"},
        headers={"Cookie": f"{LOGIN_COOKIE}={token}"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console"  # no open redirect: `next` is not read at all
    session = [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}=")]
    assert len(session) == 1
    attributes = session[0].lower()
    for attribute in ("httponly", "samesite=strict", "path=/console"):
        assert attribute in attributes
    for header in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert header in response.headers


async def test_login_form_refuses_forged_posts_and_opens_no_session(
    web: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    email = await new_staff(db, clock, StaffRole.ADMIN)
    form = await web.get("/console/login")
    token = form.cookies[LOGIN_COOKIE]
    other = (await web.get("/console/login")).cookies[LOGIN_COOKIE]
    before = await fingerprint(db)
    good = {"csrf_token": token, "email": email, "password": PASSWORD}
    attempts = [
        ({"email": email, "password": PASSWORD}, {"Cookie": f"{LOGIN_COOKIE}={token}"}),  # no field
        (good, {}),  # no cookie
        (good, {"Cookie": f"{LOGIN_COOKIE}={other}"}),  # another browser's cookie
        ({**good, "csrf_token": ""}, {"Cookie": f"{LOGIN_COOKIE}="}),  # both empty
        (good, {"Cookie": f"{LOGIN_COOKIE}={token}", "Origin": FOREIGN}),  # from another site
    ]
    for data, headers in attempts:
        response = await web.post("/console/login", data=data, headers=headers)
        assert response.status_code == 403, (headers, response.text[:300])
        assert SESSION_COOKIE not in response.cookies
    await assert_nothing_written(db, before)


async def test_console_logins_count_against_the_accounts_login_limit(
    web: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    """Guessing through the form is no way around the API's per-account limit (10 in 15 minutes here)."""
    email = await new_staff(db, clock, StaffRole.ADMIN)
    for attempt in range(11):
        form = await web.get("/console/login")
        token = form.cookies[LOGIN_COOKIE]
        password = PASSWORD if attempt == 10 else f"guess-{attempt}"
        response = await web.post(
            "/console/login",
            data={"csrf_token": token, "email": email, "password": password},
            headers={"Cookie": f"{LOGIN_COOKIE}={token}"},
        )
        assert SESSION_COOKIE not in response.cookies, attempt
    assert response.status_code == 429, response.text[:300]
    assert "too_many_login_attempts" in response.text


# --- markup injection ---------------------------------------------------------------------------------


def assert_escaped(html: str, where: str) -> None:
    """The payload is on the page (so the test saw it rendered) and only in its escaped form."""
    assert "<script>alert" not in html, f"raw <script> on {where}"
    assert "<img src=x" not in html, f"raw <img> on {where}"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, f"the payload is not shown on {where}"


SVG_ELEMENTS = {"svg", "title", "rect", "text", "line", "polyline", "circle"}


def assert_safe_svg(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output; well-formed: an unescaped quote or tag in it would break the parse
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1]
        assert name in SVG_ELEMENTS, name
        for attribute in element.attrib:
            assert not attribute.lower().startswith("on"), attribute
            assert "href" not in attribute.lower(), attribute
    return root


def test_charts_escape_every_text_they_draw() -> None:
    svgs = [
        line_chart(
            [Series(name=PAYLOAD, points=[(1.0, 2.0), (2.0, 3.0)])],
            title=PAYLOAD,
            x_label=PAYLOAD,
            y_label=PAYLOAD,
            x_format=lambda x: PAYLOAD,
        ),
        bar_chart([(PAYLOAD, 3.0), ("b", float("nan"))], title=PAYLOAD, value_format=lambda v: PAYLOAD),
        interval_chart(
            [Interval(PAYLOAD, 0.2, -0.1, 0.5), Interval(PAYLOAD, None, None, None)],
            title=PAYLOAD,
            x_label=PAYLOAD,
            value_format=lambda v: PAYLOAD,
        ),
    ]
    for svg in svgs:
        root = assert_safe_svg(svg)
        texts = [element.text for element in root.iter() if element.text]
        assert PAYLOAD in texts  # drawn, as text
        assert root.attrib["aria-label"] == PAYLOAD


def _figures(html: str) -> list[str]:
    return re.findall(r"<figure[^>]*>(.*?)</figure>", html, flags=re.S)


async def test_staff_typed_markup_is_escaped_on_every_page_and_in_the_svg(
    client: httpx.AsyncClient, world: World, marketer_console: Console, admin_console: Console
) -> None:
    created = await marketer_console.post(
        "/console/offers",
        offer_form(world.today, name=PAYLOAD, title=PAYLOAD, body=PAYLOAD),
    )
    assert created.status_code == 303, created.text[:500]
    offer_path = created.headers["location"]
    activated = await marketer_console.post(f"{offer_path}/state", {"state": "active"})
    assert activated.status_code == 303, activated.text[:500]
    campaign = await marketer_console.post(
        "/console/campaigns",
        campaign_form(name=PAYLOAD, **{"variants[0].title": PAYLOAD, "variants[0].body": PAYLOAD}),
    )
    assert campaign.status_code == 303, campaign.text[:500]
    store = await admin_console.post("/console/stores", store_form(name=PAYLOAD, address=PAYLOAD))
    assert store.status_code == 303, store.text[:500]
    terminal = await admin_console.post(f"{store.headers['location']}/terminals", {"name": PAYLOAD})
    assert terminal.status_code == 201
    assert_escaped(terminal.text, "terminal created")
    pages = {
        "offers": await marketer_console.get("/console/offers"),
        "offer": await marketer_console.get(offer_path),
        "campaigns": await marketer_console.get("/console/campaigns"),
        "campaign": await marketer_console.get(campaign.headers["location"]),
        "preview": await marketer_console.get(
            f"{campaign.headers['location']}/preview", headers={"HX-Request": "true"}
        ),
        "stores": await admin_console.get("/console/stores"),
        "store": await admin_console.get(store.headers["location"]),
        "segment builder": await marketer_console.get("/console/segments"),
        "new offer (store choices)": await marketer_console.get("/console/offers/new"),
    }
    del pages["preview"]  # no member asked for: nothing to show
    for name, page in pages.items():
        assert page.status_code == 200, (name, page.text[:300])
        assert_escaped(page.text, name)
    plots = _figures(pages["offers"].text)
    assert plots, "the offers page drew no plot of the policy's choice"
    root = assert_safe_svg(plots[0])
    assert PAYLOAD in [element.text for element in root.iter()]


async def test_member_typed_markup_is_escaped_wherever_staff_see_members(
    client: httpx.AsyncClient, world: World, clock: SettableClock, marketer_console: Console
) -> None:
    """Outsiders write two things staff read: their display name, and the properties of their app events."""
    member = await sign_up(client, display_name=PAYLOAD)
    member_id, email = member["member"]["id"], member["member"]["email"]
    event = {
        "client_event_id": "xss-1",
        "kind": "app_opened",
        "occurred_at": clock.now().isoformat(),
        "properties": {"screen": PAYLOAD},
    }
    reported = await client.post("/v1/app/events", json={"events": [event]}, headers=bearer(member))
    assert reported.status_code == 200, reported.text
    assert reported.json()["results"][0]["status"] == "recorded", reported.text
    campaign = await marketer_console.post("/console/campaigns", campaign_form())
    assert campaign.status_code == 303
    pages = {
        "search": await marketer_console.get("/console/members", params={"q": email}),
        "member": await marketer_console.get(f"/console/members/{member_id}"),
        "timeline fragment": await marketer_console.get(
            f"/console/members/{member_id}", headers={"HX-Request": "true", "HX-Target": "timeline"}
        ),
        "preview": await marketer_console.get(
            f"{campaign.headers['location']}/preview",
            params={"member": email},
            headers={"HX-Request": "true"},
        ),
    }
    for name, page in pages.items():
        assert page.status_code == 200, (name, page.text[:300])
        assert_escaped(page.text, name)


async def test_markup_a_register_reports_as_its_software_version_is_escaped(
    client: httpx.AsyncClient, admin: dict[str, Any], admin_console: Console
) -> None:
    """A register (or whoever holds its secret) writes the software version the store page shows."""
    store = await create_store(client, admin)
    till = await create_terminal(client, admin, store["id"])
    beat = await pos_post(client, till, "/v1/pos/heartbeat", {"software_version": PAYLOAD})
    assert beat.status_code == 200, beat.text
    page = await admin_console.get(f"/console/stores/{store['id']}")
    assert page.status_code == 200
    assert_escaped(page.text, "store page (terminal software)")


async def test_a_staff_display_name_is_escaped_in_the_page_header(
    web: httpx.AsyncClient, db: Database, clock: SettableClock
) -> None:
    staff = await log_in(web, await new_staff(db, clock, StaffRole.MARKETER, display_name=PAYLOAD))
    front = await staff.get("/console")
    assert_escaped(front.text, "page header")


async def test_reflected_input_is_escaped(
    web: httpx.AsyncClient, world: World, marketer_console: Console, admin_console: Console
) -> None:
    search = await marketer_console.get("/console/members", params={"q": PAYLOAD})
    assert search.status_code == 200
    assert_escaped(search.text, "member search")
    form = await web.get("/console/login")
    token = form.cookies[LOGIN_COOKIE]
    login = await web.post(
        "/console/login",
        data={"csrf_token": token, "email": PAYLOAD, "password": "wrong"},
        headers={"Cookie": f"{LOGIN_COOKIE}={token}"},
    )
    assert 400 <= login.status_code < 500
    assert_escaped(login.text, "login form")
    # A refused form shows what was typed again, and the problem's detail, next to it.
    offer = await marketer_console.post(
        "/console/offers", offer_form(world.today, name=PAYLOAD, **{"terms.kind": "x"})
    )
    assert offer.status_code == 400
    assert_escaped(offer.text, "refused offer form")
    campaign = await marketer_console.post(
        "/console/campaigns", campaign_form(name=PAYLOAD, deep_link=PAYLOAD)
    )
    assert campaign.status_code == 400
    assert_escaped(campaign.text, "refused campaign form")
    store = await admin_console.post("/console/stores", store_form(name=PAYLOAD, time_zone=PAYLOAD))
    assert 400 <= store.status_code < 500
    assert_escaped(store.text, "refused store form")
    segment = await marketer_console.post(
        "/console/segments",
        {"segment.all[3].field": "favourite_store", "segment.all[3].store_id": PAYLOAD},
    )
    assert segment.status_code == 400
    assert "<script>alert" not in segment.text
    assert "<img src=x" not in segment.text


# --- garbage in forms and queries ---------------------------------------------------------------------


@dataclass(frozen=True)
class Garbage:
    name: str
    path: str  # may name {store_id} etc.
    form: Callable[[World], FormData]


def _offer(**overrides: str | list[str]) -> Callable[[World], FormData]:
    return lambda w: offer_form(w.today, **overrides)


def _campaign(**overrides: str | list[str]) -> Callable[[World], FormData]:
    return lambda w: campaign_form(**overrides)


def _store(**overrides: str | list[str]) -> Callable[[World], FormData]:
    return lambda w: store_form(**overrides)


def _at(kind: str, **fields: str | list[str]) -> Callable[[World], FormData]:
    return _campaign(**{"schedule.kind": kind, **{f"schedule.{k}": v for k, v in fields.items()}})


GARBAGE = [
    Garbage("offer name too long", "/console/offers", _offer(name="x" * 20_000)),
    Garbage("offer name 121 chars", "/console/offers", _offer(name="x" * 121)),
    Garbage("offer name blank", "/console/offers", _offer(name="   ")),
    Garbage(
        "offer missing title",
        "/console/offers",
        lambda w: {k: v for k, v in offer_form(w.today).items() if k != "title"},
    ),
    Garbage("offer limit negative", "/console/offers", _offer(per_member_limit="-5")),
    Garbage("offer limit exponent", "/console/offers", _offer(per_member_limit="1e3")),
    Garbage("offer limit NaN", "/console/offers", _offer(per_member_limit="NaN")),
    Garbage("offer limit decimal", "/console/offers", _offer(per_member_limit="1.5")),
    Garbage("offer limit hex", "/console/offers", _offer(per_member_limit="0x10")),
    Garbage("offer limit 15 digits", "/console/offers", _offer(per_member_limit="9" * 15)),
    Garbage("offer budget 16 digits", "/console/offers", _offer(budget_redemptions="9" * 16)),
    Garbage("offer budget past 10^12", "/console/offers", _offer(budget_points="9" * 15)),
    Garbage("offer points Infinity", "/console/offers", _offer(**{"terms.points": "Infinity"})),
    Garbage("offer points zero", "/console/offers", _offer(**{"terms.points": "0"})),
    Garbage("offer kind unknown", "/console/offers", _offer(**{"terms.kind": "free_money"})),
    Garbage("offer from year 1", "/console/offers", _offer(valid_from="0001-01-01")),
    Garbage("offer until year 9999", "/console/offers", _offer(valid_until="9999-12-31")),
    Garbage("offer 30 February", "/console/offers", _offer(valid_until="2030-02-30")),
    Garbage("offer date as words", "/console/offers", _offer(valid_from="yesterday")),
    Garbage(
        "offer ends before it starts",
        "/console/offers",
        _offer(valid_from="2030-01-02", valid_until="2030-01-01"),
    ),
    Garbage("offer store not a uuid", "/console/offers", _offer(store_ids=["not-a-uuid"])),
    Garbage("offer unknown store", "/console/offers", _offer(store_ids=[str(uuid.uuid4())])),
    Garbage("offer 201 stores", "/console/offers", _offer(store_ids=[str(uuid.uuid4()) for _ in range(201)])),
    Garbage("offer image javascript", "/console/offers", _offer(image_url="javascript:alert(1)")),
    Garbage(
        "offer audience not a trait",
        "/console/offers",
        _offer(**{"audience.all[0].field": "visited_store", "audience.all[0].in": "x"}),
    ),
    Garbage(
        "offer audience health 101",
        "/console/offers",
        _offer(**{"audience.all[1].field": "health_score", "audience.all[1].min": "101"}),
    ),
    Garbage(
        "offer audience min above max",
        "/console/offers",
        _offer(
            **{
                "audience.all[1].field": "health_score",
                "audience.all[1].min": "90",
                "audience.all[1].max": "10",
            }
        ),
    ),
    Garbage(
        "offer audience condition without field",
        "/console/offers",
        _offer(**{"audience.all[1].min": "10"}),
    ),
    Garbage(
        "offer change ends before it starts",
        "/console/offers/{offer_id}",
        _offer(valid_from="2030-01-02", valid_until="2030-01-01"),
    ),
    Garbage("offer state unknown", "/console/offers/{offer_id}/state", lambda w: {"state": "deleted"}),
    Garbage("offer state missing", "/console/offers/{offer_id}/state", lambda w: {}),
    Garbage(
        "offer state twice", "/console/offers/{offer_id}/state", lambda w: {"state": ["bogus", "active"]}
    ),
    Garbage(
        "campaign name missing",
        "/console/campaigns",
        lambda w: {k: v for k, v in campaign_form().items() if k != "name"},
    ),
    Garbage("campaign at year 9999", "/console/campaigns", _at("at", at="9999-12-31T23:59")),
    Garbage("campaign at year 1", "/console/campaigns", _at("at", at="0001-01-01T00:00")),
    Garbage("campaign at 1999", "/console/campaigns", _at("at", at="1999-12-31T23:59")),
    Garbage("campaign at month 13", "/console/campaigns", _at("at", at="2030-13-01T09:00")),
    Garbage("campaign at NaN", "/console/campaigns", _at("at", at="NaN")),
    Garbage("campaign at offset +99", "/console/campaigns", _at("at", at="2030-11-23T10:00+99:00")),
    Garbage("campaign at 24:00", "/console/campaigns", _at("at", at="2030-11-23T24:00")),
    Garbage(
        "campaign local date 5 digits",
        "/console/campaigns",
        _at("local_time", date="99999-01-01", time="09:00"),
    ),
    Garbage(
        "campaign local date 2100", "/console/campaigns", _at("local_time", date="2100-01-01", time="09:00")
    ),
    Garbage(
        "campaign local time 25:00", "/console/campaigns", _at("local_time", date="2030-01-01", time="25:00")
    ),
    Garbage(
        "campaign window of 8 days",
        "/console/campaigns",
        _at("best_hour", window_start="2030-01-01T00:00", window_end="2030-01-09T00:00"),
    ),
    Garbage(
        "campaign window backwards",
        "/console/campaigns",
        _at("best_hour", window_start="2030-01-02T00:00", window_end="2030-01-01T00:00"),
    ),
    Garbage(
        "campaign recurring a century",
        "/console/campaigns",
        _at("recurring", time="09:00", start_date="2000-01-01", end_date="2099-12-31"),
    ),
    Garbage(
        "campaign recurring weekday unknown",
        "/console/campaigns",
        _at("recurring", time="09:00", start_date="2030-01-01", end_date="2030-01-31", weekdays=["funday"]),
    ),
    Garbage("campaign kind unknown", "/console/campaigns", _at("whenever")),
    Garbage("campaign control 51", "/console/campaigns", _campaign(control_percent="51")),
    Garbage("campaign control -1", "/console/campaigns", _campaign(control_percent="-1")),
    Garbage("campaign control 1.5", "/console/campaigns", _campaign(control_percent="1.5")),
    Garbage("campaign weight 0", "/console/campaigns", _campaign(**{"variants[0].weight": "0"})),
    Garbage("campaign weight 101", "/console/campaigns", _campaign(**{"variants[0].weight": "101"})),
    Garbage("campaign variant key bad", "/console/campaigns", _campaign(**{"variants[0].key": "<b>"})),
    Garbage(
        "campaign quiet hours 25:00",
        "/console/campaigns",
        _campaign(**{"quiet_hours.start": "25:00", "quiet_hours.end": "07:00"}),
    ),
    Garbage(
        "campaign quiet hours only start", "/console/campaigns", _campaign(**{"quiet_hours.start": "22:00"})
    ),
    Garbage(
        "campaign deep link javascript", "/console/campaigns", _campaign(deep_link="javascript:alert(1)")
    ),
    Garbage(
        "campaign near store NaN km",
        "/console/campaigns",
        lambda w: campaign_form(
            **{
                "segment.all[6].field": "near_store",
                "segment.all[6].store_id": w.store_id,
                "segment.all[6].within_km": "NaN",
            }
        ),
    ),
    Garbage(
        "campaign near store 1e9 km",
        "/console/campaigns",
        lambda w: campaign_form(
            **{
                "segment.all[6].field": "near_store",
                "segment.all[6].store_id": w.store_id,
                "segment.all[6].within_km": "999999999999",
            }
        ),
    ),
    Garbage(
        "campaign visited within 0 days",
        "/console/campaigns",
        lambda w: campaign_form(
            **{
                "segment.all[5].field": "visited_store",
                "segment.all[5].store_id": w.store_id,
                "segment.all[5].within_days": "0",
            }
        ),
    ),
    Garbage(
        "campaign unknown store",
        "/console/campaigns",
        _campaign(
            **{"segment.all[3].field": "favourite_store", "segment.all[3].store_id": str(uuid.uuid4())}
        ),
    ),
    Garbage(
        "segment stage unknown",
        "/console/segments",
        lambda w: {"segment.all[4].field": "stage", "segment.all[4].in": ["mythril"]},
    ),
    Garbage(
        "segment points 15 digits",
        "/console/segments",
        lambda w: {
            "segment.all[7].field": "points_expiring",
            "segment.all[7].within_days": "30",
            "segment.all[7].min_points": "9" * 15,
        },
    ),
    Garbage(
        "segment field unknown",
        "/console/segments",
        lambda w: {"segment.all[2].field": "__class__", "segment.all[2].score": "recency"},
    ),
    Garbage("store latitude NaN", "/console/stores", _store(latitude="NaN")),
    Garbage("store latitude 91", "/console/stores", _store(latitude="91")),
    Garbage("store latitude exponent", "/console/stores", _store(latitude="1e2")),
    Garbage("store latitude 13 digits", "/console/stores", _store(latitude="1234567890123")),
    Garbage("store code markup", "/console/stores", _store(code="<B>")),
    Garbage("store time zone unknown", "/console/stores", _store(time_zone="Mars/Olympus_Mons")),
    Garbage("store time zone path", "/console/stores", _store(time_zone="../../etc/passwd")),
    Garbage("store radius negative", "/console/stores", _store(check_in_radius_m="-1")),
    Garbage("store radius 15 digits", "/console/stores", _store(check_in_radius_m="9" * 15)),
    Garbage("store status unknown", "/console/stores", _store(status="demolished")),
    Garbage("store polygon 2 points", "/console/stores", _store(fence_polygon="35.1, 139.1\n35.2, 139.2")),
    Garbage("store polygon words", "/console/stores", _store(fence_polygon="here\nthere\neverywhere")),
    Garbage(
        "store polygon 101 points",
        "/console/stores",
        _store(fence_polygon="\n".join(f"35.{i:03d}, 139.{i:03d}" for i in range(101))),
    ),
    Garbage("store hours 25:00", "/console/stores", _store(**{"hours.mon": "25:00-26:00"})),
    Garbage("store hours backwards", "/console/stores", _store(**{"hours.mon": "21:00-10:00"})),
    Garbage("store hours words", "/console/stores", _store(**{"hours.mon": "all day"})),
    Garbage(
        "store hours five ranges", "/console/stores", _store(**{"hours.mon": ",".join(["10:00-10:30"] * 5)})
    ),
    Garbage("store change latitude NaN", "/console/stores/{store_id}", lambda w: {"latitude": "NaN"}),
    Garbage(
        "store change time zone unknown",
        "/console/stores/{store_id}",
        lambda w: {"time_zone": "Nowhere/Land"},
    ),
    Garbage("store change name too long", "/console/stores/{store_id}", lambda w: {"name": "x" * 121}),
    Garbage("terminal name missing", "/console/stores/{store_id}/terminals", lambda w: {}),
    Garbage("terminal name too long", "/console/stores/{store_id}/terminals", lambda w: {"name": "x" * 81}),
    Garbage("flag reason missing", "/console/fraud/{member_id}/flag", lambda w: {}),
    Garbage("flag reason too long", "/console/fraud/{member_id}/flag", lambda w: {"reason": "x" * 301}),
]


@pytest.mark.parametrize("case", GARBAGE, ids=lambda c: c.name)
async def test_garbage_in_a_form_is_a_4xx_page_and_writes_nothing(
    case: Garbage, world: World, db: Database, admin_console: Console
) -> None:
    path = case.path.format(**{k: getattr(world, k) for k in ("store_id", "offer_id", "member_id")})
    before = await fingerprint(db)
    response = await admin_console.post(path, case.form(world))
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:600])
    assert response.headers["content-type"].startswith("text/html")
    assert re.search(r'<p class="problem" role="alert"[^>]*><code>[a-z_]+</code>', response.text), (
        response.text[:600]
    )
    await assert_nothing_written(db, before)


@pytest.mark.parametrize(
    ("name", "path", "form", "form_action"),
    [
        (
            "terminal name too long",
            "/console/stores/{store_id}/terminals",
            {"name": "x" * 81},
            "/console/stores/{store_id}/terminals",
        ),
        (
            "offer state unknown",
            "/console/offers/{offer_id}/state",
            {"state": "deleted"},
            "/console/offers/{offer_id}",
        ),
    ],
    ids=["terminal name", "offer state"],
)
async def test_a_refused_small_form_shows_its_problem_next_to_the_form(
    name: str, path: str, form: dict[str, str], form_action: str, world: World, admin_console: Console
) -> None:
    """The issue: every form's problem is shown inline, as the big forms (offer, campaign, store) do."""
    ids = {"store_id": world.store_id, "offer_id": world.offer_id}
    response = await admin_console.post(path.format(**ids), form)
    assert response.status_code == 400
    assert "validation_failed" in response.text
    assert f'action="{form_action.format(**ids)}' in response.text, (
        "the problem is on a page without the form"
    )


NUL_CASES = [
    Garbage("offer name", "/console/offers", _offer(name="Linen\x00week")),
    Garbage("campaign title", "/console/campaigns", _campaign(**{"variants[0].title": "Hi\x00there"})),
    Garbage("store name", "/console/stores", _store(name="Ginza\x00store")),
    Garbage("terminal name", "/console/stores/{store_id}/terminals", lambda w: {"name": "Register\x001"}),
    Garbage("flag reason", "/console/fraud/{member_id}/flag", lambda w: {"reason": "shared\x00phone"}),
]


@pytest.mark.parametrize("case", NUL_CASES, ids=lambda c: c.name)
async def test_a_nul_character_in_a_form_is_refused_not_a_500(
    case: Garbage, world: World, db: Database, admin_console: Console
) -> None:
    """The JSON API refuses \\u0000 in any body (api/strict_body.py): PostgreSQL text cannot hold it."""
    path = case.path.format(**{k: getattr(world, k) for k in ("store_id", "offer_id", "member_id")})
    before = await fingerprint(db)
    response = await admin_console.post(path, case.form(world))
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:600])
    await assert_nothing_written(db, before)


@pytest.mark.parametrize(
    ("template", "params"),
    [
        ("/console/members", {"q": "hanako\x00"}),
        ("/console/campaigns/{campaign_id:uuid}/preview", {"member": "a\x00@example.jp"}),
    ],
    ids=["member search", "campaign preview"],
)
async def test_a_nul_character_in_a_query_is_refused_not_a_500(
    template: str, params: dict[str, str], world: World, marketer_console: Console
) -> None:
    response = await marketer_console.web.get(
        _get_path(template, world),
        params=params,
        headers={"Cookie": f"{SESSION_COOKIE}={marketer_console.token}"},
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:600])


async def test_a_nul_character_in_the_login_email_is_refused_not_a_500(web: httpx.AsyncClient) -> None:
    """Before any session: anyone on the internet can send this."""
    form = await web.get("/console/login")
    token = form.cookies[LOGIN_COOKIE]
    response = await web.post(
        "/console/login",
        data={"csrf_token": token, "email": "admin\x00@example.jp", "password": "whatever"},
        headers={"Cookie": f"{LOGIN_COOKIE}={token}"},
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:600])


@pytest.mark.parametrize(
    ("name", "body", "content_type"),
    [
        (
            "invalid utf-8, percent-encoded",
            b"name=%FF%FE%FD&variants[0].key=A",
            "application/x-www-form-urlencoded",
        ),
        ("invalid utf-8, raw bytes", b"name=\xff\xfe&variants[0].key=A", "application/x-www-form-urlencoded"),
        ("a lone surrogate", b"name=%ED%A0%80&variants[0].key=A", "application/x-www-form-urlencoded"),
        ("broken percent escapes", b"name=%ZZ%&&&==&variants[0].key=A", "application/x-www-form-urlencoded"),
        ("multipart without boundary", b"--x\r\n\r\n", "multipart/form-data"),
        ("multipart garbage", b"\x00\x01garbage--", "multipart/form-data; boundary=zz"),
        (
            "multipart file as the name",
            b'--zz\r\nContent-Disposition: form-data; name="name"; filename="a.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\nhello\r\n--zz--\r\n",
            "multipart/form-data; boundary=zz",
        ),
        ("json instead of a form", b'{"name": "x"}', "application/json"),
        (
            "ten thousand repeated fields",
            b"&".join([b"name=x"] * 10_000),
            "application/x-www-form-urlencoded",
        ),
        ("past the body limit", b"name=" + b"x" * (1024 * 1024 + 1), "application/x-www-form-urlencoded"),
        (
            "two thousand multipart parts",
            b"".join(
                b'--zz\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i for i in range(2000)
            )
            + b"--zz--\r\n",
            "multipart/form-data; boundary=zz",
        ),
    ],
)
async def test_malformed_bodies_are_a_4xx_never_a_500(
    name: str, body: bytes, content_type: str, db: Database, marketer_console: Console
) -> None:
    before = await fingerprint(db)
    response = await marketer_console.post_raw("/console/campaigns", body, content_type)
    assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:600])
    await assert_nothing_written(db, before)


@pytest.mark.parametrize(
    ("template", "query"),
    [
        ("/console", "days=8"),
        ("/console", "days=abc"),
        ("/console", "days=-7"),
        ("/console/members", "q=" + "a" * 255),
        ("/console/members/{member_id:uuid}", "phase=bogus"),
        ("/console/members/{member_id:uuid}", "kind=bogus"),
        ("/console/members/{member_id:uuid}", "cursor=" + "x" * 65),
        ("/console/members/{member_id:uuid}", "cursor=!!!!"),
        ("/console/members/{member_id:uuid}", "cursor=AAAAAAAAAAAAAAAAAAAAAA"),
        ("/console/members/{member_id:uuid}", "cursor=eyJhIjoxfQ"),
        ("/console/campaigns", "cursor=!!!!"),
        ("/console/campaigns", "cursor=" + "x" * 65),
        ("/console/campaigns/{campaign_id:uuid}/preview", "member=" + "a" * 255),
    ],
)
async def test_garbage_in_a_query_is_a_4xx_page(
    template: str, query: str, world: World, marketer_console: Console
) -> None:
    response = await marketer_console.get(f"{_get_path(template, world)}?{query}")
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:600])
    assert response.headers["content-type"].startswith("text/html")


# --- ids in paths -------------------------------------------------------------------------------------


def _with_ids(template: str, **ids: str) -> str:
    return re.sub(r"\{(\w+):uuid\}", lambda m: ids.get(m.group(1), ids["any"]), template)


@pytest.mark.parametrize("template", [t for t in USER_GETS + ADMIN_GETS if ":uuid" in t])
async def test_missing_or_foreign_ids_in_a_page_path_are_404(
    template: str, world: World, admin_console: Console
) -> None:
    missing = str(uuid.uuid4())
    for id_ in (missing, world.campaign_id if "campaign" not in template else world.offer_id):
        response = await admin_console.get(_with_ids(template, any=id_))
        if template.endswith("/preview"):
            response = await admin_console.get(
                _with_ids(template, any=id_) + f"?member={world.member_email}", headers={"HX-Request": "true"}
            )
        assert response.status_code == 404, (id_, response.status_code, response.text[:300])
    for not_an_id in ("abc", "1%20OR%201=1", "..%2F..%2Fetc", "0" * 33, str(uuid.uuid4()) + "0"):
        response = await admin_console.get(_with_ids(template, any=not_an_id))
        assert 400 <= response.status_code < 500, (not_an_id, response.status_code)


async def test_a_timeline_fragment_for_a_missing_member_is_404(
    world: World, marketer_console: Console
) -> None:
    response = await marketer_console.get(
        f"/console/members/{uuid.uuid4()}", headers={"HX-Request": "true", "HX-Target": "timeline"}
    )
    assert response.status_code == 404, response.text[:300]


@pytest.mark.parametrize("route", [r for r in POST_ROUTES if ":uuid" in r.template], ids=lambda r: r.template)
async def test_missing_or_foreign_ids_in_a_form_path_are_refused_and_write_nothing(
    route: PostRoute, world: World, db: Database, admin_console: Console
) -> None:
    before = await fingerprint(db)
    foreign = world.store_id if "store" not in route.template else world.campaign_id
    for id_ in (str(uuid.uuid4()), foreign):
        response = await admin_console.post(_with_ids(route.template, any=id_), route.form(world))
        if route.template.endswith("/unflag"):
            assert response.status_code < 500  # unflagging nobody is a no-op
        else:
            assert response.status_code == 404, (id_, response.status_code, response.text[:300])
    for not_an_id in ("abc", "1%20OR%201=1", "0" * 33):
        response = await admin_console.post(_with_ids(route.template, any=not_an_id), route.form(world))
        assert 400 <= response.status_code < 500, (not_an_id, response.status_code)
    await assert_nothing_written(db, before)


# --- two at once --------------------------------------------------------------------------------------


async def _twice(send: Callable[[], Any]) -> list[httpx.Response]:
    return await _at_once(send, 2)


async def _at_once(send: Callable[[], Any], times: int) -> list[httpx.Response]:
    responses: Sequence[httpx.Response] = await asyncio.gather(*(send() for _ in range(times)))
    return sorted(responses, key=lambda r: r.status_code)


async def test_cancelling_a_campaign_twice_at_once(
    db: Database, world: World, marketer_console: Console
) -> None:
    path = f"/console/campaigns/{world.campaign_id}/cancel"
    first, second = await _twice(lambda: marketer_console.post(path, {}))
    assert (first.status_code, second.status_code) == (303, 409), second.text[:300]
    async with db.unit_of_work() as uow:
        state = await uow.session.scalar(
            text("SELECT state::text FROM push_campaigns WHERE id = :id"), {"id": world.campaign_id}
        )
    assert state == "cancelled"


async def test_scheduling_a_campaign_twice_at_once(
    db: Database, world: World, marketer_console: Console
) -> None:
    path = f"/console/campaigns/{world.campaign_id}/schedule"
    first, second = await _twice(lambda: marketer_console.post(path, {}))
    assert (first.status_code, second.status_code) == (303, 409), second.text[:300]


async def test_flagging_a_member_from_several_tabs_at_once(
    db: Database, world: World, admin_console: Console
) -> None:
    """Admins reviewing the same suspect press Flag together: each flag lands (the last reason wins).

    The race is between finding no flag and inserting one, so each round starts unflagged and sends eight.
    """
    path = f"/console/fraud/{world.member_id}/flag"
    for _ in range(5):
        cleared = await admin_console.post(f"/console/fraud/{world.member_id}/unflag", {})
        assert cleared.status_code == 303
        responses = await _at_once(lambda: admin_console.post(path, {"reason": "shared phone"}), 8)
        assert [r.status_code for r in responses] == [303] * 8, [r.text[:300] for r in responses]
        async with db.unit_of_work() as uow:
            flags = await uow.session.scalar(
                text("SELECT count(*) FROM check_in_flags WHERE member_id = :id"), {"id": world.member_id}
            )
        assert flags == 1


async def test_creating_one_store_code_twice_at_once(db: Database, admin_console: Console) -> None:
    form = store_form()
    first, second = await _twice(lambda: admin_console.post("/console/stores", form))
    assert (first.status_code, second.status_code) == (303, 409), second.text[:300]
    async with db.unit_of_work() as uow:
        stores = await uow.session.scalar(
            text("SELECT count(*) FROM stores WHERE code = :code"), {"code": form["code"]}
        )
    assert stores == 1


async def test_activating_and_editing_a_draft_offer_at_once(
    db: Database, world: World, marketer_console: Console
) -> None:
    """An edit read as a draft's (terms included) must not land on an offer activated meanwhile."""
    path = f"/console/offers/{world.offer_id}"
    edit = offer_form(world.today, **{"terms.points": "900", "name": "Edited"})
    results = await asyncio.gather(
        marketer_console.post(f"{path}/state", {"state": "active"}), marketer_console.post(path, edit)
    )
    activated, edited = results
    assert activated.status_code == 303, activated.text[:300]
    async with db.unit_of_work() as uow:
        state, terms = (
            await uow.session.execute(
                text("SELECT state::text, terms FROM offers WHERE id = :id"), {"id": world.offer_id}
            )
        ).one()
    assert state == "active"
    if edited.status_code == 303:  # the edit committed first, on the draft; activation came after it
        assert terms["points"] == 900
    else:  # activation first: the edit is refused whole, and the active offer's terms are the old ones
        assert edited.status_code == 409, edited.text[:300]
        assert terms["points"] == 100


async def test_ten_offer_activations_at_once_all_land_without_an_error(
    client: httpx.AsyncClient, admin: dict[str, Any], world: World, db: Database, marketer_console: Console
) -> None:
    """Activation takes a catalogue-wide lock; ten at once queue on it (the ceiling, 500, is not reached)."""
    ids = [world.offer_id]
    for _ in range(9):
        created = await client.post(
            "/v1/console/offers", json=offer_draft(world.today), headers=bearer(admin)
        )
        assert created.status_code == 201
        ids.append(created.json()["id"])
    responses = await asyncio.gather(
        *(marketer_console.post(f"/console/offers/{i}/state", {"state": "active"}) for i in ids)
    )
    assert [r.status_code for r in responses] == [303] * 10
    async with db.unit_of_work() as uow:
        active = await uow.session.scalar(text("SELECT count(*) FROM offers WHERE state = 'active'"))
    assert active == 10


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_other_methods_on_console_forms_are_refused_and_write_nothing(
    method: str, world: World, db: Database, admin_console: Console
) -> None:
    before = await fingerprint(db)
    for route in POST_ROUTES:
        response = await admin_console.web.request(
            method,
            route.path(world),
            data={**route.form(world), "csrf_token": admin_console.csrf},
            headers={"Cookie": f"{SESSION_COOKIE}={admin_console.token}"},
        )
        assert response.status_code == 405, (route.template, response.status_code)
    await assert_nothing_written(db, before)


@pytest.mark.parametrize(
    "path",
    [
        "/console/static/../web.py",
        "/console/static/..%2fweb.py",
        "/console/static/%2e%2e/templates/base.html",
        "/console/static/..%5cweb.py",
        "/console/static/%00",
    ],
)
async def test_static_files_do_not_reach_outside_their_folder(path: str, web: httpx.AsyncClient) -> None:
    response = await web.get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code)
    assert "import" not in response.text
    assert "{% block" not in response.text
