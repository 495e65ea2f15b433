"""Running a write at most once per Idempotency-Key, and answering retries with the stored response."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.enums import ParamType
from litestar.openapi.spec import OpenAPIType, Operation, Parameter, Schema

from api.problems import PROBLEM_MEDIA_TYPE, domain_error_body
from api.services import services_of
from domain.errors import DomainError
from infra.db import UnitOfWork
from infra.idempotency import KEY_PATTERN, IdempotencyKeyRequired, keep_failure, once, request_digest

_KEY = re.compile(KEY_PATTERN)
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PARAMETER = Parameter(
    name="Idempotency-Key",
    param_in=ParamType.HEADER,
    required=True,
    schema=Schema(type=OpenAPIType.STRING, pattern=KEY_PATTERN),
    description="Unique per intended write; a retry sends the same key and gets the stored answer",
)


@dataclass
class IdempotentOperation(Operation):
    """The OpenAPI operation of a handler that calls `idempotent`: it reads its key from the request
    itself (to answer `idempotency_key_required`), so the header is not in its signature."""

    def __post_init__(self) -> None:
        self.parameters = [*(self.parameters or []), KEY_PARAMETER]


def idempotency_key(request: Request[Any, Any, Any]) -> str:
    """The request's Idempotency-Key; `idempotency_key_required` (400) if it has no usable one."""
    key = request.headers.get("idempotency-key", "")
    if not _KEY.match(key):
        raise IdempotencyKeyRequired()
    return key


async def idempotent(
    request: Request[Any, Any, Any],
    uow: UnitOfWork,
    scope: str,
    produce: Callable[[], Awaitable[msgspec.Struct]],
    status_code: int = 200,
) -> Response[bytes]:
    """Run `produce` once per key. A failure that keeps an outcome (a rejected check-in) also keeps its
    problem response under the key, so a retry gets the same answer; any other failure keeps nothing,
    so a retry is judged afresh."""
    key = idempotency_key(request)
    services = services_of(request.app.state)
    digest = request_digest(request.method, request.url.path, await request.body())
    now = services.clock.now()
    ttl = timedelta(seconds=services.settings.idempotency_ttl_s)

    async def effect() -> tuple[int, bytes]:
        try:
            return status_code, msgspec.json.encode(await produce())
        except DomainError as error:
            if uow.keeps_outcome:
                outcomes = uow.take_outcomes()
                status, body = error.status, domain_error_body(request, error)

                async def keep_under_key(kept: UnitOfWork) -> None:
                    # The key first, as every request takes it first (no lock-order deadlock); a
                    # concurrent retry that stored its answer already kept this outcome too.
                    if await keep_failure(kept, scope, key, digest, now, ttl, status, body):
                        for outcome in outcomes:
                            await outcome(kept)

                uow.keep_on_failure(keep_under_key)
            raise

    stored = await once(uow, scope, key, digest, now, ttl, effect)
    headers = {REPLAYED_HEADER: "true"} if stored.replayed else {}
    media_type = PROBLEM_MEDIA_TYPE if stored.status_code >= 400 else "application/json"
    return Response(
        content=stored.body, status_code=stored.status_code, media_type=media_type, headers=headers
    )
