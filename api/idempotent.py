"""Running a write at most once per Idempotency-Key, and answering retries with the stored response."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import msgspec
from litestar import Request, Response

from api.services import services_of
from infra.db import UnitOfWork
from infra.idempotency import KEY_PATTERN, IdempotencyKeyRequired, once, request_digest

_KEY = re.compile(KEY_PATTERN)
REPLAYED_HEADER = "Idempotent-Replayed"


async def idempotent(
    request: Request[Any, Any, Any],
    uow: UnitOfWork,
    scope: str,
    produce: Callable[[], Awaitable[msgspec.Struct]],
    status_code: int = 200,
) -> Response[bytes]:
    key = request.headers.get("idempotency-key", "")
    if not _KEY.match(key):
        raise IdempotencyKeyRequired()
    services = services_of(request.app.state)
    digest = request_digest(request.method, request.url.path, await request.body())

    async def effect() -> tuple[int, bytes]:
        return status_code, msgspec.json.encode(await produce())

    stored = await once(
        uow,
        scope,
        key,
        digest,
        services.clock.now(),
        timedelta(seconds=services.settings.idempotency_ttl_s),
        effect,
    )
    headers = {REPLAYED_HEADER: "true"} if stored.replayed else {}
    return Response(
        content=stored.body, status_code=stored.status_code, media_type="application/json", headers=headers
    )
