"""Logging in to and out of the console."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.enums import MediaType

from accounts.console_sessions import CONSOLE_SESSION_TTL, end_console_session, open_console_session
from accounts.schemas import Credentials
from api.console.forms import body_of
from api.console.web import (
    CONSOLE_FORM,
    CONSOLE_USER,
    CSRF_FIELD,
    LOGIN_COOKIE,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    ConsoleFormDep,
    ConsoleUserDep,
    CsrfRefused,
    check_same_origin,
    problem_of,
    render,
    see_other,
    uses_https,
)
from api.services import ClockDep, LoginLimitsDep, Uow
from domain.errors import DomainError

LOGIN_TOKEN_TTL_S = 3600


def _cookie(request: Request[Any, Any, Any], key: str, value: str, max_age: int) -> Cookie:
    return Cookie(
        key=key,
        value=value,
        path="/console",
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=uses_https(request),
    )


class ConsoleLoginController(Controller):
    path = "/console"
    include_in_schema = False

    @get("/login")
    async def login_page(self, request: Request[Any, Any, Any]) -> Response[str]:
        return self._form(request, status=200, email="", problem=None)

    @post("/login")
    async def log_in(
        self, request: Request[Any, Any, Any], uow: Uow, clock: ClockDep, login_limits: LoginLimitsDep
    ) -> Response[Any]:
        check_same_origin(request)
        form = await request.form()
        email = form.get("email")
        email = email if isinstance(email, str) else ""
        try:
            sent, expected = form.get(CSRF_FIELD), request.cookies.get(LOGIN_COOKIE, "")
            if not (
                isinstance(sent, str) and expected and hmac.compare_digest(sent.encode(), expected.encode())
            ):
                raise CsrfRefused()
            credentials = body_of(Credentials, {"email": email, "password": form.get("password")})
            token, _ = await open_console_session(uow, login_limits, credentials, clock.now())
        except DomainError as error:
            return self._form(request, status=error.status, email=email[:254], problem=problem_of(error))
        response = see_other("/console")
        response.cookies.append(
            _cookie(request, SESSION_COOKIE, token, int(CONSOLE_SESSION_TTL.total_seconds()))
        )
        response.cookies.append(_cookie(request, LOGIN_COOKIE, "", 0))
        return response

    @post("/logout", dependencies={**CONSOLE_USER, **CONSOLE_FORM})
    async def log_out(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        clock: ClockDep,
        console_user: ConsoleUserDep,
        console_form: ConsoleFormDep,
    ) -> Response[Any]:
        await end_console_session(uow, request.cookies.get(SESSION_COOKIE, ""), clock.now())
        response = see_other("/console/login")
        response.cookies.append(_cookie(request, SESSION_COOKIE, "", 0))
        return response

    @staticmethod
    def _form(request: Request[Any, Any, Any], **context: Any) -> Response[str]:
        """The login form with a fresh double-submit token (a new one on every showing)."""
        token = secrets.token_urlsafe(32)
        status = context.pop("status")
        response = Response(
            render("login.html", user=None, login_token=token, **context),
            media_type=MediaType.HTML,
            status_code=status,
            headers=SECURITY_HEADERS,
        )
        response.cookies.append(_cookie(request, LOGIN_COOKIE, token, LOGIN_TOKEN_TTL_S))
        return response
