"""What the published OpenAPI says an operation can answer besides its success: problem documents
(RFC 9457, `application/problem+json`, see api/problems.py), by status, so a client generated from it
models every answer, and no operation shows the framework's own error shape.

Which statuses follow from what the operation is: any request can be malformed (400), refused by a
rule (422), meet an outage (503) or find its credentials refused (401); a staff or terminal one can be
forbidden (403); one naming a resource, in its path or its body, can name none (404); a
write can meet its key in use or its fact already there (409), be too large (413) or not JSON (415);
and the rate limits (429) guard members' and terminals' requests and the sign-ins.
"""

from __future__ import annotations

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.routes import HTTPRoute

from api.problems import PROBLEM_MEDIA_TYPE

DESCRIBED = "/v1/"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
MEANINGS = {
    400: "Malformed or failing validation (`validation_failed`, `idempotency_key_required`, ...)",
    401: "No valid credentials for this caller",
    403: "The caller may not do this (role, disabled terminal or store)",
    404: "No such resource",
    409: "The Idempotency-Key's first request is still running, or the fact was posted before",
    413: "The body is larger than this API accepts",
    415: "The body is not JSON",
    422: "Well formed but refused by a business rule; `code` says which",
    429: "Too many requests; `Retry-After` says when to try again",
    500: "Something went wrong on our side; the request had no effect",
    503: "A dependency is unavailable; retry after `Retry-After` (the same Idempotency-Key for writes)",
}


class Problem(msgspec.Struct, kw_only=True):
    """An error answer (RFC 9457); operations may add fields of their own (e.g. `retry_after_s`)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    request_id: str | None = None


def problem_statuses(path: str, methods: set[str], security: list[str]) -> list[int]:
    """The error statuses an operation of `methods` at `path`, guarded by `security`, can answer."""
    statuses = {400, 401, 422, 500, 503}  # 401 too where credentials come in the body (sign-in, refresh)
    if security:
        statuses.add(429)
    if "staff" in security or "pos_signature" in security:
        statuses.add(403)
    if "{" in path:
        statuses.add(404)
    if methods & WRITES:  # a write names what it acts on (a store, a sale, an offer), in its body too
        statuses |= {404, 409, 413, 415, 429}
    return sorted(statuses)


def problem_response(status: int, description: str | None = None) -> ResponseSpec:
    """A problem answer as the OpenAPI shows it; a handler names one its kind of operation lacks."""
    return ResponseSpec(Problem, media_type=PROBLEM_MEDIA_TYPE, description=description or MEANINGS[status])


def describe_problems(app: Litestar) -> None:
    """Add the problem answers to every operation of the API (not the console's pages or /schema)."""
    for route in app.routes:
        if not (isinstance(route, HTTPRoute) and route.path.startswith(DESCRIBED)):
            continue
        for handler in route.route_handlers:
            if "OPTIONS" in handler.http_methods:
                continue
            _describe(handler, route.path)


def _describe(handler: HTTPRouteHandler, path: str) -> None:
    security = [name for requirement in handler.resolve_security() for name in requirement]
    problems = {
        status: problem_response(status)
        for status in problem_statuses(path, set(handler.http_methods), security)
    }
    handler.responses = {**problems, **(handler.responses or {})}
