"""OWASP API9:2023 Improper inventory management: the published OpenAPI lists every operation the
service answers (outside the console's own pages and the description itself), and nothing else answers."""

from __future__ import annotations

import re

import httpx
from litestar.routes import HTTPRoute

from api.app import create_app
from domain.clock import SettableClock
from infra.settings import Settings

# Served but deliberately not in the API description: the console's HTML pages (a browser's, behind
# its session and CSRF token) and the description and its viewers.
UNDESCRIBED = ("/console", "/schema")


def answered_operations(settings: Settings, clock: SettableClock) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves; path parameters as OpenAPI writes them."""
    app = create_app(settings, clock)
    return {
        (method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in app.routes
        if isinstance(route, HTTPRoute) and not route.path.startswith(UNDESCRIBED)
        for method in route.methods
        if method not in {"OPTIONS", "HEAD"}  # answered for every route: CORS preflight, GET's headers
    }


async def test_every_operation_the_service_answers_is_described_and_nothing_more(
    client: httpx.AsyncClient, settings: Settings, clock: SettableClock
) -> None:
    published = (await client.get("/schema/openapi.json")).json()["paths"]
    described = {(method.upper(), path) for path, item in published.items() for method in item}
    assert answered_operations(settings, clock) == described


async def test_routes_that_do_not_exist_answer_a_problem_not_a_page(client: httpx.AsyncClient) -> None:
    for method, path, status in [
        ("GET", "/v1/app/admin", 404),
        ("GET", "/v2/app/points", 404),
        ("GET", "/.env", 404),
        ("DELETE", "/v1/app/points", 405),
        ("PUT", "/v1/pos/purchases", 405),
    ]:
        answer = await client.request(method, path)
        assert answer.status_code == status, (method, path, answer.text[:200])
        assert answer.headers["content-type"] == "application/problem+json", (method, path)
        if status == 405:  # RFC 9110: a 405 says what the route does allow
            allowed = answer.headers.get("allow", "")
            assert allowed, dict(answer.headers)
            assert method not in allowed, allowed
