from __future__ import annotations

import httpx


async def test_liveness_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_checks_database_and_redis(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready"}


async def test_every_response_carries_a_request_id_and_echoes_a_sane_one(client: httpx.AsyncClient) -> None:
    generated = await client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    echoed = await client.get("/healthz", headers={"X-Request-Id": "pos-4711"})
    assert echoed.headers["x-request-id"] == "pos-4711"
    replaced = await client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert replaced.headers["x-request-id"] != "bad id with spaces"


async def test_openapi_schema_is_served(client: httpx.AsyncClient) -> None:
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/v1/app/members" in paths
    assert "/v1/pos/heartbeat" in paths
    swagger = await client.get("/schema/swagger")
    assert swagger.status_code == 200
    assert "swagger" in swagger.text.lower()


async def test_unknown_route_is_a_problem_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "not_found"
    assert body["type"].endswith("/not_found")
    assert body["status"] == 404
