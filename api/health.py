"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State
from sqlalchemy import text

from api.problems import problem_response
from api.services import services_of

READINESS_TIMEOUT_S = 2.0


class Health(msgspec.Struct, frozen=True):
    status: str


@get("/healthz", tags=["health"], summary="Liveness: the process serves requests")
async def healthz() -> Health:
    return Health(status="ok")


@get("/readyz", tags=["health"], summary="Readiness: PostgreSQL and Redis answer", response_model=Health)
async def readyz(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    services = services_of(state)
    failures: list[str] = []

    async def database() -> None:
        async with services.db.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    for name, check in (("database", database), ("redis", services.redis.client.ping)):
        try:
            await asyncio.wait_for(check(), READINESS_TIMEOUT_S)
        except Exception as error:
            failures.append(f"{name}: {type(error).__name__}")
    if failures:
        return problem_response(
            request,
            503,
            "not_ready",
            "A dependency is unavailable",
            "; ".join(failures),
            {"failing": failures},
        )
    return Response(Health(status="ready"))
