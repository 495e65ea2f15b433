"""RFC 9457 problem details for every error, with a stable `code` per error."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from domain.errors import DomainError
from infra.logging import request_id_var

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://tsunagari.dev/problems/"

_CODES_BY_STATUS = {
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


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    title: str,
    detail: str,
    extensions: dict[str, Any] | None = None,
) -> Response[bytes]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
        "request_id": request_id_var.get(),
    }
    body.update(extensions or {})
    headers = {}
    retry_after = body.get("retry_after_s")
    if isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)
    return Response(
        content=msgspec.json.encode(body, enc_hook=str),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
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
    code, title = _CODES_BY_STATUS.get(status, ("http_error", "The request cannot be carried out"))
    if status >= HTTP_500_INTERNAL_SERVER_ERROR:
        log.error("HTTP %s: %s", status, error.detail, exc_info=error)
    return problem_response(request, status, code, title, error.detail or title)


def unexpected_error_to_problem(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    code, title = _CODES_BY_STATUS[500]
    return problem_response(request, 500, code, title, title)


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
