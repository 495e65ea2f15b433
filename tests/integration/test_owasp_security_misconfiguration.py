"""OWASP API8:2023 Security misconfiguration: every answer carries protective headers, no cross-origin
access is granted, and the published API description can be switched off."""

from __future__ import annotations

import re

import httpx
import msgspec
import pytest

from domain.clock import SettableClock
from infra.settings import Settings
from tests.conftest import serving
from tests.integration.factories import TerminalCredentials, bearer, sign_up, signed_headers

PROTECTIVE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


async def test_every_kind_of_answer_carries_the_protective_headers(
    client: httpx.AsyncClient, terminal: TerminalCredentials
) -> None:
    member = await sign_up(client)
    answers = {
        "member data": await client.get("/v1/app/points", headers=bearer(member)),
        "login": await client.post(
            "/v1/app/sessions", json={"email": member["member"]["email"], "password": "x" * 12}
        ),
        "no token": await client.get("/v1/app/points"),
        "unknown route": await client.get("/v1/app/nothing-here"),
        "bad body": await client.post(
            "/v1/app/members", content=b"{", headers={"content-type": "application/json"}
        ),
        "terminal": await client.get(
            "/v1/pos/terminal", headers=signed_headers(terminal, "GET", "/v1/pos/terminal")
        ),
        "health": await client.get("/healthz"),
        "console page": await client.get("/console/login"),
    }
    for name, answer in answers.items():
        for header, value in PROTECTIVE.items():
            assert answer.headers.get(header) == value, (name, answer.status_code, dict(answer.headers))
        assert answer.headers.get("referrer-policy") in {"no-referrer", "same-origin"}, name


async def test_static_assets_keep_their_own_caching(client: httpx.AsyncClient) -> None:
    page = await client.get("/console/login")
    asset = page.text.split('href="/console/static/')[1].split('"')[0]
    answer = await client.get(f"/console/static/{asset}")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "max-age=3600"
    assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path", ["/v1/app/points", "/v1/app/sessions", "/v1/console/stores", "/v1/pos/purchases"]
)
async def test_no_origin_is_granted_cross_origin_access(client: httpx.AsyncClient, path: str) -> None:
    evil = {"Origin": "https://evil.example"}
    preflight = await client.options(
        path,
        headers=evil
        | {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"},
    )
    plain = await client.get(path, headers=evil)
    for answer in (preflight, plain):
        assert not any(header.startswith("access-control-allow") for header in answer.headers), dict(
            answer.headers
        )


async def test_the_api_description_is_published_unless_switched_off(
    client: httpx.AsyncClient, settings: Settings, clock: SettableClock
) -> None:
    assert (await client.get("/schema/openapi.json")).status_code == 200
    with serving(msgspec.structs.replace(settings, openapi_enabled=False), clock) as url:
        async with httpx.AsyncClient(base_url=url) as closed:
            paths = ("/schema", "/schema/openapi.json", "/schema/swagger", "/schema/assets/swagger-ui.css")
            for path in paths:
                answer = await closed.get(path)
                assert answer.status_code == 404, (path, answer.text[:200])
                assert answer.headers["content-type"] == "application/problem+json"
            assert (await closed.get("/healthz")).status_code == 200


async def test_the_api_viewer_loads_nothing_from_elsewhere_and_no_answer_names_the_server(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/schema/swagger")
    assert page.status_code == 200
    assert "server" not in page.headers
    loaded = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert loaded, page.text[:500]
    for url in loaded:
        assert url.startswith("/schema/"), url
        assert (await client.get(url)).status_code == 200, url


async def test_answers_made_before_any_handler_carry_the_headers_too(client: httpx.AsyncClient) -> None:
    """A body too large, HEAD, a preflight, a method a route does not have, the API description."""
    answers = {
        "413": await client.post(
            "/v1/app/members",
            content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
            headers={"content-type": "application/json"},
        ),
        "HEAD": await client.head("/healthz"),
        "preflight": await client.options(
            "/v1/app/points",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        ),
        "405 on POS": await client.delete("/v1/pos/purchases"),
        "schema": await client.get("/schema/openapi.json"),
    }
    missing = {
        name: (answer.status_code, {h: answer.headers.get(h) for h in PROTECTIVE})
        for name, answer in answers.items()
        if any(answer.headers.get(h) != v for h, v in PROTECTIVE.items())
    }
    assert answers["413"].status_code == 413
    assert missing == {}
