"""Request ids and one structured log line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from infra.logging import request_id_var

log = logging.getLogger("tsunagari.request")

REQUEST_ID_HEADER = b"x-request-id"
_ACCEPTABLE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


def request_log_middleware(app: ASGIApp) -> ASGIApp:
    """Take the caller's X-Request-Id when it is sane (so a POS can correlate), else make one."""

    async def middleware(any_scope: Scope, receive: Receive, send: Send) -> None:
        if any_scope["type"] != ScopeType.HTTP:
            await app(any_scope, receive, send)
            return
        scope: HTTPScope = any_scope
        offered = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"")
        request_id = offered.decode() if _ACCEPTABLE_REQUEST_ID.match(offered) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await app(any_scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)

    return middleware
