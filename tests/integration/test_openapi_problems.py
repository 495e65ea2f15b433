"""The published OpenAPI tells the whole truth about errors (issue 13.1): every operation documents its
problem answers as `application/problem+json`, and answers the service really gives, of each kind, are
documented for their operation and have that shape."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec

from api.openapi_problems import Problem
from domain.clock import SettableClock
from tests.integration.factories import TerminalCredentials, bearer, signed_headers, store_draft
from tests.integration.register import pos, sale, shopper

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


async def published(client: httpx.AsyncClient) -> dict[str, Any]:
    schema: dict[str, Any] = (await client.get("/schema/openapi.json")).json()
    return schema


async def test_every_operation_documents_its_problems_and_no_other_error_shape(
    client: httpx.AsyncClient,
) -> None:
    schema = await published(client)
    operations = [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()]
    assert len(operations) > 50
    for path, method, operation in operations:
        if not path.startswith("/v1/"):
            continue
        errors = {status: answer for status, answer in operation["responses"].items() if status[0] in "45"}
        assert {"400", "422", "500", "503"} <= set(errors), (method, path, sorted(errors))
        for status, answer in errors.items():
            assert answer["content"] == PROBLEM, (method, path, status)
    assert "Validation Exception" not in json.dumps(schema)
    # Signing up and signing in need no token; a client must not be told to send one.
    for path in ("/v1/app/members", "/v1/app/sessions", "/v1/app/sessions/refresh", "/v1/console/sessions"):
        assert not schema["paths"][path]["post"].get("security"), path
    assert schema["paths"]["/v1/app/me"]["get"]["security"] == [{"member": []}]


async def test_the_errors_the_service_gives_are_documented_for_their_operation_with_their_shape(
    client: httpx.AsyncClient, terminal: TerminalCredentials, marketer: dict[str, Any], clock: SettableClock
) -> None:
    schema = await published(client)
    member = await shopper(client)
    body = json.dumps({"receipt_id": "R-1", "total_minor": "1000"}).encode()
    mismatched = sale(1_000, at=datetime.now(UTC)) | {"total_minor": 999}  # lines add up to 1,000
    answers = [
        ("/v1/app/points", "get", await client.get("/v1/app/points")),  # no token
        (
            "/v1/pos/purchases",
            "post",
            await client.post(  # a number sent as a string
                "/v1/pos/purchases",
                content=body,
                headers=signed_headers(terminal, "POST", "/v1/pos/purchases", body)
                | {"Idempotency-Key": "k-12345678"},
            ),
        ),
        ("/v1/pos/purchases", "post", await pos(client, clock, terminal, "/v1/pos/purchases", mismatched)),
        (
            "/v1/console/campaigns/{campaign_id}",
            "get",
            await client.get(f"/v1/console/campaigns/{uuid.uuid4()}", headers=bearer(marketer)),
        ),
        (
            "/v1/app/check-ins",
            "post",
            await client.post(  # an unknown store
                "/v1/app/check-ins",
                json={
                    "store_id": str(uuid.uuid4()),
                    "latitude": 35.0,
                    "longitude": 139.0,
                    "accuracy_m": 10,
                    "fix_at": "2026-01-01T00:00:00Z",
                    "trigger": "user_tap",
                },
                headers=bearer(member.session) | {"Idempotency-Key": "check-in-12345678"},
            ),
        ),
        (  # an admin's action
            "/v1/console/stores",
            "post",
            await client.post("/v1/console/stores", json=store_draft(), headers=bearer(marketer)),
        ),
    ]
    seen = set()
    for path, method, answer in answers:
        status = str(answer.status_code)
        assert status[0] == "4", (path, answer.status_code, answer.text[:200])
        assert answer.headers["content-type"] == "application/problem+json", path
        msgspec.json.decode(answer.content, type=Problem)  # the documented shape
        documented = schema["paths"][path][method]["responses"]
        assert status in documented, (method, path, status, sorted(documented))
        seen.add(status)
    assert seen >= {"400", "401", "403", "404", "422"}, seen


async def test_options_names_every_method_of_its_path(client: httpx.AsyncClient) -> None:
    """litestar's own OPTIONS answer listed only the first methods registered at a path."""
    schema = await published(client)
    for path, item in schema["paths"].items():
        if not path.startswith("/v1/") or "{" in path:
            continue
        answer = await client.options(path)
        assert answer.status_code == 204, (path, answer.text)
        documented = {method.upper() for method in item} | {"OPTIONS"}
        assert set(answer.headers["allow"].split(", ")) == documented, path


async def test_request_bodies_are_closed_and_idempotent_writes_name_their_key(
    client: httpx.AsyncClient,
) -> None:
    schema = await published(client)
    components = schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            reference = body.get("schema", {}).get("$ref")
            if reference is not None:
                assert components[reference.rsplit("/", 1)[1]]["additionalProperties"] is False, (
                    method,
                    path,
                )
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            writes_once = path in {"/v1/pos/purchases", "/v1/pos/refunds", "/v1/app/check-ins"}
            assert ("Idempotency-Key" in headers) is (writes_once or path.endswith("/activate")), path
