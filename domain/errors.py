"""Domain errors carry a stable machine-readable code and the HTTP status they map to.

Each capability defines its errors once, as subclasses; `api.problems` turns them into
RFC 9457 problem details.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "domain_error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "The request cannot be carried out"

    def __init__(self, detail: str | None = None, **extensions: object) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions


class NotFound(DomainError):
    code = "not_found"
    status = 404
    title = "No such resource"


class Conflict(DomainError):
    code = "conflict"
    status = 409
    title = "The request conflicts with the current state"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    status = 401
    title = "Authentication is required"


class Forbidden(DomainError):
    code = "forbidden"
    status = 403
    title = "Not allowed for this caller"


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 422
    title = "The request is well-formed but its values are not acceptable"


class RuleBroken(InvalidInput):
    code = "rule_broken"
    title = "Each value has its published form, but together they break a rule"


class RuleViolation(ValueError):
    """Raised where a request body is decoded (`__post_init__`) for values their schema allows that a rule
    refuses: fields contradicting each other, a polygon that encloses nothing. A ValueError, so decoding
    reports it with its place in the body; the API answers it `422 rule_broken` (`RuleBroken`), keeping
    400 for what the published schema itself refuses."""


class TooManyRequests(DomainError):
    code = "too_many_requests"
    status = 429
    title = "Too many requests; retry later"
