"""The console's web plumbing: pages from templates, the session cookie, CSRF, and errors as pages.

Security choices, in one place:
- The session is an opaque token in an HttpOnly, SameSite=Strict cookie scoped to /console (Secure when the
  request came over HTTPS); the server keeps only its digest (accounts.console_sessions).
- Every state-changing request carries a CSRF token derived from the session token by HMAC (synchronizer
  token: the page embeds it, a foreign site cannot read it), in the form or the `X-CSRF-Token` header
  that htmx sends, and must come from our own origin when the browser says where it came from.
- Templates escape every value (Jinja autoescape); a strict Content-Security-Policy allows only our own
  script and style files, so an injected tag could not run anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from litestar import Request, Response
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType
from litestar.exceptions import HTTPException
from litestar.response import Redirect

from accounts.console_sessions import console_staff
from accounts.errors import ConsoleSessionInvalid, StaffRoleRequired
from accounts.rules import StaffRole
from accounts.schemas import StaffProfile
from api.console import formatting
from api.console.forms import FormInvalid
from api.problems import CODES_BY_STATUS
from api.services import ClockDep, Uow
from domain.errors import DomainError, Forbidden

log = logging.getLogger(__name__)

SESSION_COOKIE = "tsunagari_console"
LOGIN_COOKIE = "tsunagari_console_login"  # the login form's own CSRF token (double submit, no session yet)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_TOKEN_CHARS = 200
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_templates = Environment(
    loader=PackageLoader("api.console", "templates"), autoescape=True, undefined=StrictUndefined
)
formatting.install(_templates)


class CsrfRefused(Forbidden):
    code = "csrf_token_invalid"
    title = "The form's security token is missing or stale; reload the page and try again"


@dataclass(frozen=True)
class ConsoleUser:
    profile: StaffProfile
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.profile.role is StaffRole.ADMIN


@dataclass(frozen=True)
class Problem:
    """A refused form, shown next to it with the API's problem code."""

    status: int
    code: str
    detail: str
    field: str | None


def problem_of(error: DomainError) -> Problem:
    return Problem(error.status, error.code, error.detail, getattr(error, "field", None))


def csrf_token_for(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"tsunagari console csrf", hashlib.sha256).hexdigest()


def render(template: str, **context: Any) -> str:
    return _templates.get_template(template).render(**context)


def page(template: str, user: ConsoleUser | None, status: int = 200, **context: Any) -> Response[str]:
    """A whole page, or (for htmx) whatever fragment the template is."""
    return Response(
        render(template, user=user, **context),
        media_type=MediaType.HTML,
        status_code=status,
        headers=SECURITY_HEADERS,
    )


def see_other(path: str) -> Redirect:
    """After a successful form: the browser GETs the result (and a reload does not post twice)."""
    return Redirect(path, status_code=303, headers=SECURITY_HEADERS)


def uses_https(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https"


async def provide_console_user(request: Request[Any, Any, Any], uow: Uow, clock: ClockDep) -> ConsoleUser:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise ConsoleSessionInvalid()
    return ConsoleUser(await console_staff(uow, token, clock.now()), csrf_token_for(token))


def provide_console_admin(console_user: NamedDependency[ConsoleUser]) -> ConsoleUser:
    if not console_user.is_admin:
        raise StaffRoleRequired("this page is for admins")
    return console_user


async def refuse_nul_characters(request: Request[Any, Any, Any]) -> None:
    """No console path, query or form value may hold a NUL character: PostgreSQL text cannot store it,
    the file system cannot name it, and no field has a use for it (the JSON API refuses it in bodies)."""
    texts = [request.scope["path"], *(text for pair in request.query_params.multi_items() for text in pair)]
    if request.method == "POST":
        form = await request.form()
        texts += [text for pair in form.multi_items() for text in pair if isinstance(text, str)]
    if any("\x00" in text for text in texts):
        raise FormInvalid("text must not contain the NUL character")


def check_same_origin(request: Request[Any, Any, Any]) -> None:
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise CsrfRefused("the form was sent from another site")


async def provide_console_form(
    request: Request[Any, Any, Any], console_user: NamedDependency[ConsoleUser]
) -> FormMultiDict:
    """The posted form, once its CSRF token is checked: the only way a console handler reads a body."""
    check_same_origin(request)
    form = await request.form()
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), console_user.csrf_token.encode()):
        raise CsrfRefused()
    return form


ConsoleUserDep = NamedDependency[ConsoleUser]
ConsoleAdminDep = NamedDependency[ConsoleUser]
ConsoleFormDep = NamedDependency[FormMultiDict]
CONSOLE_USER = {"console_user": Provide(provide_console_user)}
CONSOLE_ADMIN = {**CONSOLE_USER, "console_admin": Provide(provide_console_admin, sync_to_thread=False)}
CONSOLE_FORM = {"console_form": Provide(provide_console_form)}


def _is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def console_error_page(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """Errors under /console as pages (same codes as the API's problems); signed-out users go to log in."""
    if isinstance(error, ConsoleSessionInvalid):
        if _is_htmx(request):
            headers = {**SECURITY_HEADERS, "HX-Redirect": "/console/login"}
            return Response("", status_code=401, headers=headers)
        return see_other("/console/login")
    if isinstance(error, DomainError):
        status, code, title, detail = error.status, error.code, error.title, error.detail
    elif isinstance(error, HTTPException):
        status = error.status_code
        code, title = CODES_BY_STATUS.get(status, ("http_error", "The request cannot be carried out"))
        detail = error.detail or title
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
        status, (code, title) = 500, CODES_BY_STATUS[500]
        detail = title
    return page("error.html", None, status=status, code=code, title=title, detail=detail)
