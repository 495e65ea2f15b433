"""RFC 9457 problem details for every error, with a stable `code` per error."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import Message
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from domain.errors import DomainError
from infra.db import is_retryable
from infra.logging import request_id_var

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://tsunagari.dev/problems/"
UNAVAILABLE_RETRY_AFTER_S = 2

CODES_BY_STATUS = {
    400: ("bad_request", "The request is malformed"),
    401: ("unauthenticated", "Authentication is required"),
    403: ("forbidden", "Not allowed for this caller"),
    404: ("not_found", "No such resource"),
    405: ("method_not_allowed", "This method is not allowed here"),
    413: ("request_too_large", "The request body is larger than this API accepts"),
    415: ("unsupported_media_type", "Send JSON (Content-Type: application/json)"),
    429: ("too_many_requests", "Too many requests; retry later"),
    500: ("internal_error", "Something went wrong on our side; the request had no effect"),
    503: ("service_unavailable", "A dependency is unavailable; retry shortly"),
}


def problem_body(
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    extensions: dict[str, Any] | None = None,
) -> bytes:
    """The problem document, as stored for idempotent replays and sent to the client."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "request_id": request_id_var.get(),
    }
    body.update(extensions or {})
    return msgspec.json.encode(body, enc_hook=str)


def _headers(extensions: dict[str, Any] | None) -> dict[str, str]:
    retry_after = (extensions or {}).get("retry_after_s")
    return {"Retry-After": str(retry_after)} if isinstance(retry_after, int) else {}


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    title: str,
    detail: str,
    extensions: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    return Response(
        content=problem_body(status, code, title, detail, request.url.path, extensions),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={**(headers or {}), **_headers(extensions)},
    )


def problem_messages(
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    extensions: dict[str, Any] | None = None,
) -> list[Message]:
    """The same problem as raw ASGI messages, for middleware that answers outside any handler."""
    body = problem_body(status, code, title, detail, instance, extensions)
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in _headers(extensions).items()),
    ]
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body, "more_body": False},
    ]


def domain_error_body(request: Request[Any, Any, Any], error: DomainError) -> bytes:
    return problem_body(
        error.status, error.code, error.title, error.detail, request.url.path, error.extensions
    )


def domain_error_to_problem(request: Request[Any, Any, Any], error: DomainError) -> Response[bytes]:
    return problem_response(request, error.status, error.code, error.title, error.detail, error.extensions)


def http_exception_to_problem(request: Request[Any, Any, Any], error: HTTPException) -> Response[bytes]:
    status = error.status_code
    if isinstance(error, ValidationException):
        return problem_response(
            request,
            400,
            "validation_failed",
            "The request does not match the expected schema",
            _validation_detail(error),
            {"errors": error.extra or []},
        )
    code, title = CODES_BY_STATUS.get(status, ("http_error", "The request cannot be carried out"))
    if status >= HTTP_500_INTERNAL_SERVER_ERROR:
        log.error("HTTP %s: %s", status, error.detail, exc_info=error)
    # e.g. the Allow of a 405, which RFC 9110 requires
    return problem_response(
        request, status, code, title, error.detail or title, headers=dict(error.headers or {})
    )


def unexpected_error_to_problem(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    if _dependency_unavailable(error):
        log.warning("%s %s: dependency unavailable: %s", request.method, request.url.path, error)
        code, title = CODES_BY_STATUS[503]
        return problem_response(
            request,
            503,
            code,
            title,
            "the database or cache is unavailable or busy; nothing was changed, retry shortly",
            {"retry_after_s": UNAVAILABLE_RETRY_AFTER_S},
        )
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    code, title = CODES_BY_STATUS[500]
    return problem_response(request, 500, code, title, title)


def _dependency_unavailable(error: Exception) -> bool:
    return is_retryable(error) or isinstance(error, RedisConnectionError | RedisTimeoutError)


def _validation_detail(error: ValidationException) -> str:
    if isinstance(error.extra, list) and error.extra:
        first = error.extra[0]
        if isinstance(first, dict) and "message" in first:
            key = first.get("key")
            return f"{first['message']}" + (f" (at {key})" if key else "")
    return error.detail


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    DomainError: domain_error_to_problem,
    HTTPException: http_exception_to_problem,
    Exception: unexpected_error_to_problem,
}
